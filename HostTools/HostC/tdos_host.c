#define _GNU_SOURCE
#include "tdos_host.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sched.h>
#include <sys/uio.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

int tdos_sha256_hw_available(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int ssse3 = (c >> 9) & 1, sse41 = (c >> 19) & 1;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int sha = (b >> 29) & 1;
    return ssse3 && sse41 && sha;
}

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

// Four rounds on message words W (already scheduled): two sha256rnds2, two rounds each.
#define TDOS_ROUNDS4(W, g)                                                          \
    do {                                                                            \
        __m128i m_ = _mm_add_epi32((W), _mm_loadu_si128((const __m128i *)&K256[4 * (g)])); \
        s1 = _mm_sha256rnds2_epu32(s1, s0, m_);                                     \
        m_ = _mm_shuffle_epi32(m_, 0x0E);                                           \
        s0 = _mm_sha256rnds2_epu32(s0, s1, m_);                                     \
    } while (0)

// Words 4g+4..4g+7 from the three groups before: next += alignr(cur, prev); next = msg2(next, cur).
#define TDOS_SCHEDULE(next, cur, prev)                                              \
    do {                                                                            \
        (next) = _mm_add_epi32((next), _mm_alignr_epi8((cur), (prev), 4));          \
        (next) = _mm_sha256msg2_epu32((next), (cur));                               \
    } while (0)

__attribute__((target("sha,sse4.1,ssse3")))
void tdos_sha256_hw_blocks(uint32_t *state, const uint8_t *data, ptrdiff_t blocks) {
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i t = _mm_loadu_si128((const __m128i *)&state[0]);
    __m128i s1 = _mm_loadu_si128((const __m128i *)&state[4]);
    t = _mm_shuffle_epi32(t, 0xB1);           // CDAB
    s1 = _mm_shuffle_epi32(s1, 0x1B);         // EFGH
    __m128i s0 = _mm_alignr_epi8(t, s1, 8);   // ABEF
    s1 = _mm_blend_epi16(s1, t, 0xF0);        // CDGH
    for (; blocks > 0; blocks--, data += 64) {
        const __m128i abef = s0, cdgh = s1;
        __m128i w0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 0)), bswap);
        __m128i w1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16)), bswap);
        __m128i w2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 32)), bswap);
        __m128i w3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 48)), bswap);
        TDOS_ROUNDS4(w0, 0);
        TDOS_ROUNDS4(w1, 1);  w0 = _mm_sha256msg1_epu32(w0, w1);
        TDOS_ROUNDS4(w2, 2);  w1 = _mm_sha256msg1_epu32(w1, w2);
        // Groups 3..12: schedule the next group, then msg1 on the one before.
        TDOS_ROUNDS4(w3, 3);  TDOS_SCHEDULE(w0, w3, w2); w2 = _mm_sha256msg1_epu32(w2, w3);
        TDOS_ROUNDS4(w0, 4);  TDOS_SCHEDULE(w1, w0, w3); w3 = _mm_sha256msg1_epu32(w3, w0);
        TDOS_ROUNDS4(w1, 5);  TDOS_SCHEDULE(w2, w1, w0); w0 = _mm_sha256msg1_epu32(w0, w1);
        TDOS_ROUNDS4(w2, 6);  TDOS_SCHEDULE(w3, w2, w1); w1 = _mm_sha256msg1_epu32(w1, w2);
        TDOS_ROUNDS4(w3, 7);  TDOS_SCHEDULE(w0, w3, w2); w2 = _mm_sha256msg1_epu32(w2, w3);
        TDOS_ROUNDS4(w0, 8);  TDOS_SCHEDULE(w1, w0, w3); w3 = _mm_sha256msg1_epu32(w3, w0);
        TDOS_ROUNDS4(w1, 9);  TDOS_SCHEDULE(w2, w1, w0); w0 = _mm_sha256msg1_epu32(w0, w1);
        TDOS_ROUNDS4(w2, 10); TDOS_SCHEDULE(w3, w2, w1); w1 = _mm_sha256msg1_epu32(w1, w2);
        TDOS_ROUNDS4(w3, 11); TDOS_SCHEDULE(w0, w3, w2); w2 = _mm_sha256msg1_epu32(w2, w3);
        TDOS_ROUNDS4(w0, 12); TDOS_SCHEDULE(w1, w0, w3); w3 = _mm_sha256msg1_epu32(w3, w0);
        TDOS_ROUNDS4(w1, 13); TDOS_SCHEDULE(w2, w1, w0);
        TDOS_ROUNDS4(w2, 14); TDOS_SCHEDULE(w3, w2, w1);
        TDOS_ROUNDS4(w3, 15);
        s0 = _mm_add_epi32(s0, abef);
        s1 = _mm_add_epi32(s1, cdgh);
    }
    t = _mm_shuffle_epi32(s0, 0x1B);          // FEBA
    s1 = _mm_shuffle_epi32(s1, 0xB1);         // DCHG
    s0 = _mm_blend_epi16(t, s1, 0xF0);        // DCBA
    s1 = _mm_alignr_epi8(s1, t, 8);           // HGFE
    _mm_storeu_si128((__m128i *)&state[0], s0);
    _mm_storeu_si128((__m128i *)&state[4], s1);
}

#else

int tdos_sha256_hw_available(void) { return 0; }
void tdos_sha256_hw_blocks(uint32_t *state, const uint8_t *data, ptrdiff_t blocks) {
    (void)state; (void)data; (void)blocks;
}

#endif

enum { TDOS_BATCH_MAX = 64 };

int tdos_recv_batch(int fd, uint8_t *buffers, size_t stride, int count,
                    uint32_t *lengths, uint32_t *hosts, uint16_t *ports, int wait) {
    if (count > TDOS_BATCH_MAX) count = TDOS_BATCH_MAX;
    struct mmsghdr msgs[TDOS_BATCH_MAX];
    struct iovec iov[TDOS_BATCH_MAX];
    struct sockaddr_in from[TDOS_BATCH_MAX];
    memset(msgs, 0, sizeof(msgs[0]) * (size_t)count);
    for (int i = 0; i < count; i++) {
        iov[i].iov_base = buffers + (size_t)i * stride;
        iov[i].iov_len = stride;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &from[i];
        msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
    }
    int n = recvmmsg(fd, msgs, (unsigned)count, wait ? MSG_WAITFORONE : MSG_DONTWAIT, NULL);
    if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
    for (int i = 0; i < n; i++) {
        lengths[i] = msgs[i].msg_len;
        hosts[i] = ntohl(from[i].sin_addr.s_addr);
        ports[i] = ntohs(from[i].sin_port);
    }
    return n;
}

int tdos_pin_to_cpu(int pid, int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(pid, sizeof(set), &set);
}
