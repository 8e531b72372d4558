#include "common/cpu.h"

#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace sparkv {
namespace {

#if defined(__x86_64__) || defined(__i386__)
// Through cpuid rather than __builtin_cpu_supports, which clang 14 does not accept for "f16c".
bool DetectF16c() {
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
  const bool osxsave = (ecx >> 27) & 1;
  const bool avx = (ecx >> 28) & 1;
  const bool f16c = (ecx >> 29) & 1;
  if (!(osxsave && avx && f16c)) return false;
  uint32_t xcr0_lo, xcr0_hi;
  __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  return (xcr0_lo & 0x6) == 0x6;  // XMM and YMM state enabled
}

// DetectF16c() plus FMA (cpuid leaf 1, ECX bit 12) and AVX2 (leaf 7, EBX bit 5).
bool DetectAvx2() {
  if (!DetectF16c()) return false;
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || ((ecx >> 12) & 1) == 0) return false;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  return (ebx >> 5) & 1;
}

// DetectAvx2() plus, in cpuid leaf 7, AVX512F (EBX bit 16), DQ (17), BW (30), VL (31) and VNNI
// (ECX bit 11), and XCR0 enabling the opmask and both halves of the ZMM state (bits 5 to 7).
bool DetectAvx512Vnni() {
  if (!DetectAvx2()) return false;
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  const unsigned need_ebx = (1u << 16) | (1u << 17) | (1u << 30) | (1u << 31);
  if ((ebx & need_ebx) != need_ebx || ((ecx >> 11) & 1) == 0) return false;
  uint32_t xcr0_lo, xcr0_hi;
  __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  return (xcr0_lo & 0xE6) == 0xE6;
}
#else
bool DetectF16c() { return false; }
bool DetectAvx2() { return false; }
bool DetectAvx512Vnni() { return false; }
#endif

}  // namespace

bool CpuHasF16c() {
  static const bool has = DetectF16c();
  return has;
}

bool CpuHasAvx2() {
  static const bool has = DetectAvx2();
  return has;
}

bool CpuHasAvx512Vnni() {
  static const bool has = DetectAvx512Vnni();
  return has;
}

}  // namespace sparkv
