"""Point-cloud operations in plain torch: farthest point sampling, kNN, local groups.

    from lm4vis.ops import farthest_point_sample, group_points
    centres_idx = farthest_point_sample(xyz, num_samples=64)      # (B, 64) long
    groups = group_points(xyz, centres_idx, k=32)                  # neighbourhoods (B, 64, 32, 3)
"""

from .grouping import KNN_BLOCK_ELEMENTS, Groups, gather_points, group_points, knn
from .sampling import farthest_point_sample, squared_distance

__all__ = ["farthest_point_sample", "squared_distance", "knn", "gather_points", "group_points",
           "Groups", "KNN_BLOCK_ELEMENTS"]
