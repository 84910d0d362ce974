import os

# Keep tests on the 2 cores this project is sized for, and deterministic.
os.environ.setdefault("OMP_NUM_THREADS", "2")
