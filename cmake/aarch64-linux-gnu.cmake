# Cross-compiles for AArch64 Linux with Debian's cross toolchain (g++-aarch64-linux-gnu) and runs
# what it builds under qemu user-mode emulation (qemu-user): ctest and gtest_discover_tests start
# each test binary through CMAKE_CROSSCOMPILING_EMULATOR. Libraries and packages are looked up in
# the target's root only, so a host (x86-64) library is never linked by mistake.
# Used by tests/cross/ through scripts/test-neon.sh.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# -L: the target's dynamic loader and shared libraries (libstdc++, libgomp) come from the cross
# toolchain's root.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64;-L;/usr/aarch64-linux-gnu)
