"""Situated 3D question answering: SQA3D in its release layout, and generated rooms.

    from lm4vis.data.vqa3d import RoomsConfig, RoomsQA
    rooms = RoomsQA("train", num_samples=1000, num_rooms=50, cfg=RoomsConfig())
    record, room, pose = rooms.sample(0)     # the situation, question, answer; the room and pose

A run reads them through `lm4vis.data.vqa3d.source.SceneQASource` (``data.name: rooms3d-qa``
or ``sqa3d``); items and batches are described in `lm4vis.data.vqa3d.base`.
"""

from .base import (BLIND, CHANNELS, SceneQADataset, SceneQAInfo, SceneQARecord, collate_scene_qa,
                   heading_quaternion, train_tokenizer)
from .rooms import ANSWERS, QUESTION_TYPES, Pose, Room, RoomObject, RoomsConfig, RoomsQA

__all__ = ["BLIND", "CHANNELS", "SceneQADataset", "SceneQAInfo", "SceneQARecord", "collate_scene_qa",
           "heading_quaternion", "train_tokenizer", "ANSWERS", "QUESTION_TYPES", "Pose", "Room", "RoomObject",
           "RoomsConfig", "RoomsQA"]
