// Built without CUDA: see engine/cuda/stub.cpp once the backend table lands.
