// Lets the GPU validation bundle load on glibc 2.34/2.35 systems (e.g. Ubuntu 22.04) although it is
// built on glibc 2.36 (Debian 12): the statically linked libstdc++ (std::random_device) references
// arc4random, which glibc versions only from 2.36 (GLIBC_2.36). This definition satisfies that
// reference inside the executable, so the binary asks for no GLIBC_2.36 symbol. Same contract:
// 32 random bits from the kernel (getrandom(2), glibc 2.25).
#include <sys/random.h>

#include <cstdint>
#include <cstring>

extern "C" std::uint32_t arc4random(void) noexcept {
  std::uint32_t v = 0;
  while (getrandom(&v, sizeof v, 0) != static_cast<ssize_t>(sizeof v)) {
  }
  return v;
}
