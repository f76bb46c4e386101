/* grpc_frame.h - the gRPC wire pieces that are not HTTP/2 and not protobuf:
 * status codes, the 5-byte length-prefixed message framing, grpc-timeout
 * values and percent-encoded grpc-message text. No I/O, no allocation
 * except the one message buffer a frame reader holds, so the fuzzer can
 * drive it byte by byte. */
#ifndef QS_GRPC_FRAME_H
#define QS_GRPC_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* gRPC status codes (grpc/doc/statuscodes.md). */
typedef enum qs_gcode {
  QS_G_OK = 0,
  QS_G_CANCELLED = 1,
  QS_G_UNKNOWN = 2,
  QS_G_INVALID_ARGUMENT = 3,
  QS_G_DEADLINE_EXCEEDED = 4,
  QS_G_NOT_FOUND = 5,
  QS_G_ALREADY_EXISTS = 6,
  QS_G_PERMISSION_DENIED = 7,
  QS_G_RESOURCE_EXHAUSTED = 8,
  QS_G_FAILED_PRECONDITION = 9,
  QS_G_ABORTED = 10,
  QS_G_OUT_OF_RANGE = 11,
  QS_G_UNIMPLEMENTED = 12,
  QS_G_INTERNAL = 13,
  QS_G_UNAVAILABLE = 14,
  QS_G_DATA_LOSS = 15,
  QS_G_UNAUTHENTICATED = 16,
  QS_G_NCODES
} qs_gcode;

const char *qs_gcode_name(qs_gcode c);

/* Reads one unary call's request stream: a 5-byte prefix (compressed flag,
 * big-endian length), then that many bytes. The length is checked against
 * max before a byte of the message is buffered, and the buffer is sized
 * from the prefix only once it is known to fit (so a client announcing
 * 100 MB holds nothing). */
typedef struct qs_gframe {
  size_t max;          /* largest message accepted (--max-body) */
  uint8_t hdr[5];
  size_t hlen;         /* prefix bytes seen (0..5) */
  uint8_t *msg;        /* the message (malloc'ed once the prefix is in) */
  size_t len, got;     /* announced length, bytes received */
  size_t nmsg;         /* complete messages seen */
  qs_gcode err;        /* first error, then every later byte is ignored */
  /* Asked before the buffer is allocated (may be NULL): false refuses the
   * message as RESOURCE_EXHAUSTED ("server busy"), e.g. when every request
   * body in flight together would pass --max-inflight-bytes. */
  bool (*reserve)(void *ctx, size_t n);
  void *ctx;
  char errmsg[160];
} qs_gframe;

void qs_gframe_init(qs_gframe *f, size_t max);
void qs_gframe_free(qs_gframe *f);
/* Feeds n bytes of DATA. Returns the error state (QS_G_OK while fine):
 * RESOURCE_EXHAUSTED for a length over max or when the buffer cannot be
 * had, UNIMPLEMENTED for a compressed message (no grpc-encoding is
 * accepted), INVALID_ARGUMENT for a second message (unary calls take one). */
qs_gcode qs_gframe_feed(qs_gframe *f, const uint8_t *p, size_t n);
/* At end of stream: OK and the message when exactly one whole message came;
 * else the error (a cut-off or missing message is INVALID_ARGUMENT). */
qs_gcode qs_gframe_finish(qs_gframe *f, const uint8_t **msg, size_t *len);

/* grpc-timeout: 1-8 ASCII digits then one unit (H M S m u n). Returns false
 * for anything else. */
bool qs_grpc_timeout_parse(const char *v, size_t n, uint64_t *ns);

/* grpc-message: bytes outside 0x20..0x7E and '%' as %XX. Always NUL-ends
 * out (cap >= 1); cuts at a character boundary when out is too small. */
void qs_grpc_percent_encode(const char *msg, char *out, size_t cap);

/* Writes the 5-byte prefix (uncompressed) for a message of len bytes. */
void qs_gframe_prefix(uint8_t out[5], uint32_t len);

#endif
