// Shared between the Pico W implementation files of tdos_board.h; not part of
// the contract.
#ifndef TDOS_PICO_INTERNAL_H
#define TDOS_PICO_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

// True once tdos_radio_init succeeded: the LED and Wi-Fi need the CYW43.
extern bool tdos_pico_radio_ready;

// The Wi-Fi join state machine's step, run by tdos_board_poll after the radio.
void tdos_pico_wifi_step(void);

#endif
