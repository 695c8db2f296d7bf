/* rng.h — the C tests' seeded xorshift64* generator: the same cases every run (not for keys). */
#ifndef ESCP_TEST_RNG_H
#define ESCP_TEST_RNG_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static __attribute__((unused)) uint64_t rnd(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545f4914f6cdd1dull;
}

/* n pseudo-random bytes, 8 per draw. */
static __attribute__((unused)) void fill_random(uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rnd();
    memcpy(p + i, &v, n - i < 8 ? n - i : 8);
  }
}
#endif
