"""Vision-language datasets: VQAv2 and Karpathy-split captions in their release layouts, and
generated shape scenes with questions or captions whose every fact is exact."""
