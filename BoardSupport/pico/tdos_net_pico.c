// tdos_board.h on the Pico W: Wi-Fi (join, retry with backoff, rejoin) and one
// UDP socket over lwIP's raw API.
//
// Threading: pico_cyw43_arch_lwip_poll. The CYW43 driver and lwIP run only inside
// cyw43_arch_poll() (tdos_board_poll / tdos_board_wait_until_us), on the main
// loop's stack, so the receive callback below and the Swift code that drains the
// ring never run at the same time: no locks, no volatile, no IRQ-context lwIP.
#include <string.h>

#include "lwip/ip_addr.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/udp.h"
#include "pico/cyw43_arch.h"

#include "tdos_board.h"
#include "tdos_pico_internal.h"

// ---- Wi-Fi -------------------------------------------------------------------------

// An attempt that has not reached CYW43_LINK_UP (associated + DHCP lease) by then
// is abandoned. Association takes ~2-4 s, DHCP ~1-3 s on a normal network.
#define JOIN_TIMEOUT_MS 20000u
#define BACKOFF_FIRST_MS 1000u
#define BACKOFF_MAX_MS 60000u

static struct {
    char ssid[TDOS_WIFI_SSID_BYTES_MAX + 1];  // NUL-terminated for the driver
    char psk[TDOS_WIFI_PSK_BYTES_MAX + 1];
    uint32_t auth;  // CYW43_AUTH_*
    uint32_t backoff_ms;
    uint64_t attempt_started_ms;
    tdos_wifi_status_t status;
} wifi;

static uint64_t now_ms(void) { return time_us_64() / 1000u; }

static void wifi_fail(uint32_t reason);

static void wifi_begin_attempt(void) {
    wifi.status.join_attempts++;
    wifi.attempt_started_ms = now_ms();
    wifi.status.state = TDOS_WIFI_JOINING;
    int rc = cyw43_arch_wifi_connect_async(wifi.ssid, wifi.auth == CYW43_AUTH_OPEN ? NULL : wifi.psk, wifi.auth);
    if (rc != 0) {
        // The driver refused to start: a failed attempt like any other.
        wifi_fail(TDOS_WIFI_FAIL_LINK);
    }
}

static void wifi_fail(uint32_t reason) {
    cyw43_wifi_leave(&cyw43_state, CYW43_ITF_STA);
    wifi.status.last_failure = reason;
    wifi.status.state = TDOS_WIFI_BACKOFF;
    // Jitter (up to a quarter) so that boards that lost the same access point at
    // the same moment do not all retry in step.
    uint32_t jitter = get_rand_32() % (wifi.backoff_ms / 4u + 1u);
    wifi.status.next_attempt_ms = now_ms() + wifi.backoff_ms + jitter;
    wifi.backoff_ms = wifi.backoff_ms >= BACKOFF_MAX_MS / 2u ? BACKOFF_MAX_MS : wifi.backoff_ms * 2u;
}

void tdos_pico_wifi_step(void) {
    if (wifi.status.state == TDOS_WIFI_OFF) return;
    uint64_t now = now_ms();
    int link = cyw43_tcpip_link_status(&cyw43_state, CYW43_ITF_STA);
    switch (wifi.status.state) {
    case TDOS_WIFI_BACKOFF:
        if (now >= wifi.status.next_attempt_ms) wifi_begin_attempt();
        break;
    case TDOS_WIFI_JOINING:
        if (link == CYW43_LINK_UP) {
            wifi.status.state = TDOS_WIFI_UP;
            wifi.status.up_since_ms = now;
            wifi.status.last_failure = TDOS_WIFI_FAIL_NONE;
            wifi.backoff_ms = BACKOFF_FIRST_MS;
        } else if (link == CYW43_LINK_BADAUTH) {
            wifi_fail(TDOS_WIFI_FAIL_BAD_AUTH);
        } else if (link == CYW43_LINK_NONET) {
            wifi_fail(TDOS_WIFI_FAIL_NO_NET);
        } else if (link == CYW43_LINK_FAIL) {
            wifi_fail(TDOS_WIFI_FAIL_LINK);
        } else if (now - wifi.attempt_started_ms >= JOIN_TIMEOUT_MS) {
            wifi_fail(TDOS_WIFI_FAIL_TIMEOUT);
        }
        break;
    case TDOS_WIFI_UP:
        if (link != CYW43_LINK_UP) {
            // Lost the access point (or the lease): rejoin at once, then back off.
            wifi.status.link_losses++;
            wifi.backoff_ms = BACKOFF_FIRST_MS;
            wifi_fail(TDOS_WIFI_FAIL_LOST);
            wifi.status.next_attempt_ms = now;
        }
        break;
    default:
        break;
    }
}

int32_t tdos_wifi_start(const uint8_t *ssid, uint32_t ssid_len, const uint8_t *psk, uint32_t psk_len,
                        uint32_t auth) {
    if (!tdos_pico_radio_ready) return TDOS_E_NOT_READY;
    if (ssid_len == 0 || ssid_len > TDOS_WIFI_SSID_BYTES_MAX) return TDOS_E_INVALID;
    if (psk_len > TDOS_WIFI_PSK_BYTES_MAX || (psk_len != 0 && psk_len < 8)) return TDOS_E_INVALID;
    uint32_t cyw43_auth;
    switch (psk_len == 0 ? TDOS_WIFI_AUTH_OPEN : auth) {
    case TDOS_WIFI_AUTH_OPEN: cyw43_auth = CYW43_AUTH_OPEN; break;
    case TDOS_WIFI_AUTH_WPA2: cyw43_auth = CYW43_AUTH_WPA2_AES_PSK; break;
    case TDOS_WIFI_AUTH_WPA2_WPA3: cyw43_auth = CYW43_AUTH_WPA3_WPA2_AES_PSK; break;
    default: return TDOS_E_INVALID;
    }
    if (wifi.status.state != TDOS_WIFI_OFF) tdos_wifi_stop();
    memset(&wifi, 0, sizeof wifi);
    memcpy(wifi.ssid, ssid, ssid_len);
    memcpy(wifi.psk, psk, psk_len);
    wifi.auth = cyw43_auth;
    wifi.backoff_ms = BACKOFF_FIRST_MS;
    wifi_begin_attempt();
    return TDOS_OK;
}

void tdos_wifi_stop(void) {
    if (tdos_pico_radio_ready && wifi.status.state != TDOS_WIFI_OFF) {
        cyw43_wifi_leave(&cyw43_state, CYW43_ITF_STA);
    }
    wifi.status.state = TDOS_WIFI_OFF;
}

void tdos_wifi_status(tdos_wifi_status_t *out) {
    *out = wifi.status;
    out->ip = out->netmask = out->gateway = 0;
    if (wifi.status.state == TDOS_WIFI_UP) {
        struct netif *n = &cyw43_state.netif[CYW43_ITF_STA];
        out->ip = lwip_ntohl(ip4_addr_get_u32(netif_ip4_addr(n)));
        out->netmask = lwip_ntohl(ip4_addr_get_u32(netif_ip4_netmask(n)));
        out->gateway = lwip_ntohl(ip4_addr_get_u32(netif_ip4_gw(n)));
    }
}

int32_t tdos_wifi_rssi(int32_t *dbm) {
    *dbm = 0;
    if (!tdos_pico_radio_ready || wifi.status.state != TDOS_WIFI_UP) return TDOS_E_NOT_READY;
    return cyw43_wifi_get_rssi(&cyw43_state, dbm) == 0 ? TDOS_OK : TDOS_E_IO;
}

int32_t tdos_wifi_set_power_mode(uint32_t mode) {
    if (!tdos_pico_radio_ready) return TDOS_E_NOT_READY;
    uint32_t pm;
    switch (mode) {
    case TDOS_WIFI_PM_NONE: pm = CYW43_NONE_PM; break;
    case TDOS_WIFI_PM_PERFORMANCE: pm = CYW43_PERFORMANCE_PM; break;
    case TDOS_WIFI_PM_AGGRESSIVE: pm = CYW43_AGGRESSIVE_PM; break;
    default: return TDOS_E_INVALID;
    }
    return cyw43_wifi_pm(&cyw43_state, pm) == 0 ? TDOS_OK : TDOS_E_IO;
}

// ---- UDP ------------------------------------------------------------------------------

typedef struct {
    uint32_t ip;
    uint16_t port;
    uint16_t len;
    uint8_t data[TDOS_UDP_DATAGRAM_BYTES_MAX];
} ring_slot_t;

static struct udp_pcb *udp;
static ring_slot_t ring[TDOS_UDP_RING_SLOTS];
static uint32_t ring_head;   // oldest queued slot
static uint32_t ring_count;  // slots queued
static tdos_udp_stats_t udp_stats;

// lwIP calls this from inside cyw43_arch_poll (poll mode): copy and release the
// pbuf at once, so lwIP's pool is never held by a slow consumer.
static void on_udp_recv(void *arg, struct udp_pcb *pcb, struct pbuf *p, const ip_addr_t *addr, u16_t port) {
    (void)arg;
    (void)pcb;
    if (p == NULL) return;
    if (p->tot_len > TDOS_UDP_DATAGRAM_BYTES_MAX) {
        udp_stats.dropped_oversized++;
    } else if (ring_count == TDOS_UDP_RING_SLOTS) {
        udp_stats.dropped_full++;
    } else {
        ring_slot_t *slot = &ring[(ring_head + ring_count) % TDOS_UDP_RING_SLOTS];
        slot->len = (uint16_t)pbuf_copy_partial(p, slot->data, p->tot_len, 0);
        slot->ip = lwip_ntohl(ip4_addr_get_u32(ip_2_ip4(addr)));
        slot->port = port;
        ring_count++;
        udp_stats.received++;
        if (ring_count > udp_stats.ring_high_water) udp_stats.ring_high_water = ring_count;
    }
    pbuf_free(p);
}

int32_t tdos_udp_open(uint16_t port) {
    if (!tdos_pico_radio_ready) return TDOS_E_NOT_READY;
    if (udp != NULL) tdos_udp_close();
    udp = udp_new_ip_type(IPADDR_TYPE_V4);
    if (udp == NULL) return TDOS_E_NO_MEMORY;
    ip_set_option(udp, SOF_BROADCAST);
    if (udp_bind(udp, IP_ANY_TYPE, port) != ERR_OK) {
        udp_remove(udp);
        udp = NULL;
        return TDOS_E_IO;
    }
    udp_recv(udp, on_udp_recv, NULL);
    ring_head = ring_count = 0;
    return TDOS_OK;
}

void tdos_udp_close(void) {
    if (udp != NULL) {
        udp_remove(udp);
        udp = NULL;
    }
    ring_head = ring_count = 0;
}

static int32_t send_to(const ip_addr_t *dst, uint16_t port, const uint8_t *buf, uint32_t len) {
    if (udp == NULL || wifi.status.state != TDOS_WIFI_UP) return TDOS_E_NOT_READY;
    if (len > TDOS_UDP_DATAGRAM_BYTES_MAX) return TDOS_E_INVALID;
    struct pbuf *p = pbuf_alloc(PBUF_TRANSPORT, (u16_t)len, PBUF_RAM);
    if (p == NULL) {
        udp_stats.send_errors++;
        return TDOS_E_NO_MEMORY;
    }
    memcpy(p->payload, buf, len);
    err_t err = udp_sendto(udp, p, dst, port);
    pbuf_free(p);
    if (err != ERR_OK) {
        udp_stats.send_errors++;
        return err == ERR_MEM ? TDOS_E_NO_MEMORY : TDOS_E_IO;
    }
    udp_stats.sent++;
    return (int32_t)len;
}

int32_t tdos_udp_send(uint32_t ip, uint16_t port, const uint8_t *buf, uint32_t len) {
    ip_addr_t dst;
    ip_addr_set_ip4_u32(&dst, lwip_htonl(ip));
    return send_to(&dst, port, buf, len);
}

int32_t tdos_udp_broadcast(uint16_t port, const uint8_t *buf, uint32_t len) {
    if (wifi.status.state != TDOS_WIFI_UP) return TDOS_E_NOT_READY;
    struct netif *n = &cyw43_state.netif[CYW43_ITF_STA];
    // Subnet-directed broadcast (PROTOCOL.md, Transport): network-order bit ops.
    uint32_t ip = ip4_addr_get_u32(netif_ip4_addr(n));
    uint32_t mask = ip4_addr_get_u32(netif_ip4_netmask(n));
    ip_addr_t dst;
    ip_addr_set_ip4_u32(&dst, (ip & mask) | ~mask);
    return send_to(&dst, port, buf, len);
}

int32_t tdos_udp_recv(uint8_t *buf, uint32_t cap, uint32_t *ip, uint16_t *port) {
    if (ring_count == 0) return TDOS_E_EMPTY;
    ring_slot_t *slot = &ring[ring_head];
    uint32_t n = slot->len < cap ? slot->len : cap;
    memcpy(buf, slot->data, n);
    *ip = slot->ip;
    *port = slot->port;
    ring_head = (ring_head + 1) % TDOS_UDP_RING_SLOTS;
    ring_count--;
    return (int32_t)n;
}

void tdos_udp_stats(tdos_udp_stats_t *out) { *out = udp_stats; }
