# Cross build for 64-bit Arm Linux with Debian's g++-aarch64-linux-gnu; the binaries run on this
# x86 machine under qemu-aarch64 (qemu-user), which finds the arm64 loader and libraries in the
# cross toolchain's folder. scripts/install-deps.sh installs both packages.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

set(SPARKV_AARCH64_SYSROOT /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH ${SPARKV_AARCH64_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# ctest and gtest discovery run test binaries through this; scripts/test-aarch64.sh adds -cpu.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64;-L;${SPARKV_AARCH64_SYSROOT})
