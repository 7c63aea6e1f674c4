# Toolchain for the agent core on Cortex-M33 (RP2350, and QEMU's mps2-an505 in CI) with
# Debian's gcc-arm-none-eabi. Use: cmake -S firmware-agent -B build-m33
#   -DCMAKE_TOOLCHAIN_FILE=firmware-agent/cmake/arm-none-eabi.cmake -DCMAKE_BUILD_TYPE=MinSizeRel
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR cortex-m33)

set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_ASM_COMPILER arm-none-eabi-gcc)
set(CMAKE_AR arm-none-eabi-ar)
set(CMAKE_RANLIB arm-none-eabi-ranlib)
set(CMAKE_OBJCOPY arm-none-eabi-objcopy)
set(CMAKE_SIZE arm-none-eabi-size)

# No host runtime to link a test program against: probe the compiler with a static library.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

set(FWA_M33_FLAGS "-mcpu=cortex-m33 -mthumb -mfloat-abi=soft -ffunction-sections -fdata-sections")
set(CMAKE_C_FLAGS_INIT "${FWA_M33_FLAGS}")
set(CMAKE_ASM_FLAGS_INIT "${FWA_M33_FLAGS}")
# The verifier adds -Os itself (core/verify.cmake), so that its size is the same whatever the
# build type.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-Wl,--gc-sections")

set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
