/* stream.c — streams of unknown length (escp.h "streams"). Placeholder entry points: every
 * call is refused with ESCP_E_STATE until the engine support lands. */
#include "escp.h"

ESCP_API int32_t escp_tx_stream_add(void *h, uint64_t fino, int32_t fd) {
  (void)h, (void)fino, (void)fd;
  return ESCP_E_STATE;
}
ESCP_API int32_t escp_tx_stream_open(void *h, uint64_t fino) {
  (void)h, (void)fino;
  return ESCP_E_STATE;
}
ESCP_API void *escp_tx_block_claim(void *h, int32_t timeout_ms) {
  (void)h, (void)timeout_ms;
  return 0;
}
ESCP_API int32_t escp_tx_block_submit(void *h, uint64_t fino, void *buf, uint64_t offset, uint32_t len) {
  (void)h, (void)fino, (void)buf, (void)offset, (void)len;
  return ESCP_E_STATE;
}
ESCP_API int32_t escp_tx_stream_end(void *h, uint64_t fino, uint64_t size) {
  (void)h, (void)fino, (void)size;
  return ESCP_E_STATE;
}
ESCP_API int32_t escp_rx_stream_expect(void *h, uint64_t fino, uint64_t size, uint64_t blocks, uint32_t flags,
                                       const uint8_t *digest32) {
  (void)h, (void)fino, (void)size, (void)blocks, (void)flags, (void)digest32;
  return ESCP_E_STATE;
}
ESCP_API int32_t escp_rx_stream_fd(void *h, uint64_t fino, int32_t fd) {
  (void)h, (void)fino, (void)fd;
  return ESCP_E_STATE;
}
