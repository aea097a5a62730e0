# Segfault through ctypes: reads address 0.
import ctypes

ctypes.string_at(0)
