// Host-only helpers in C for what Swift cannot reach on Linux: the x86-64 SHA
// extensions and recvmmsg (not in Swift's Glibc module). Never built for the board.
#ifndef TDOS_HOST_H
#define TDOS_HOST_H

#include <stddef.h>
#include <stdint.h>

/// 1 when this CPU has the SHA extensions (and SSSE3/SSE4.1 they need), else 0.
int tdos_sha256_hw_available(void);

/// SHA-256 compression of `blocks` 64-byte blocks at `data` into `state`
/// (the eight chaining words, host order). Only call when available.
void tdos_sha256_hw_blocks(uint32_t *state, const uint8_t *data, ptrdiff_t blocks);

/// Receives up to `count` datagrams in one recvmmsg call: datagram i into
/// buffers + i * stride (at most `stride` bytes), its length in lengths[i] and
/// its IPv4 source (host order) in hosts[i] / ports[i]. `wait` 0: only what is
/// queued; 1: first blocks until one arrives (on a blocking socket, bounded by
/// its SO_RCVTIMEO), then takes what else is queued. Returns how many (0 when
/// none, on a timeout or an interrupting signal), or -1 with errno on error.
int tdos_recv_batch(int fd, uint8_t *buffers, size_t stride, int count,
                    uint32_t *lengths, uint32_t *hosts, uint16_t *ports, int wait);

/// Restricts process (or thread) `pid` (0: the calling thread) to CPU `cpu`.
/// Returns 0, or -1 with errno. Benchmarks use it to place client and servers alike.
int tdos_pin_to_cpu(int pid, int cpu);

#endif
