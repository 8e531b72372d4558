// x86 CPU feature checks for picking SIMD code at run time. Each result is computed once.
#pragma once

namespace sparkv {

// F16C and AVX in the CPU, and the OS saving YMM state on context switches. False off x86.
bool CpuHasF16c();

// CpuHasF16c() plus AVX2 and FMA: what the *_avx2.cc files are compiled for.
bool CpuHasAvx2();

// CpuHasAvx2() plus AVX-512 F, BW, VL, DQ and VNNI, and the OS saving the ZMM and mask state:
// what the *_avx512.cc files are compiled for.
bool CpuHasAvx512Vnni();

}  // namespace sparkv
