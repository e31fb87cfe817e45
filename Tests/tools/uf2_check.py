#!/usr/bin/env python3
"""Independent check of a UF2 file made by TDOS's converter (HostTools/Host/UF2.swift),
written from the UF2 specification and the RP2040 datasheet, standard library only
(PyPI's `uf2` tools are not assumed to be installed).

    uf2_check.py FILE.uf2 [IMAGE.elf] [--image]

Checks every block (magics, family-id flag, RP2040 family id 0xe48bff56, 256-byte
payload, aligned flash addresses, block numbering and count, zero padding), that no
address is written twice, with --image that the file starts with a boot2 whose
CRC-32/MPEG-2 matches (the bootrom's check), and, given the ELF, that every byte of
every PT_LOAD segment is in the UF2 at its load address and nothing else is
written except zero padding inside the pages those segments touch.
Prints one summary line; exits 1 on the first problem.
"""
import struct
import sys

MAGIC0, MAGIC1, MAGIC_END = 0x0A324655, 0x9E5D5157, 0x0AB16F30
FAMILY_RP2040 = 0xE48BFF56
FLASH_BASE, FLASH_BYTES = 0x10000000, 2 * 1024 * 1024


def fail(msg):
    print("uf2_check: " + msg, file=sys.stderr)
    sys.exit(1)


def crc32_mpeg2(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) & 0xFFFFFFFF if crc & 0x80000000 else (crc << 1) & 0xFFFFFFFF
    return crc


def read_blocks(uf2):
    if not uf2 or len(uf2) % 512:
        fail(f"{len(uf2)} bytes is not a whole number of 512-byte blocks")
    n = len(uf2) // 512
    pages = {}
    for i in range(n):
        blk = uf2[i * 512:(i + 1) * 512]
        m0, m1, flags, addr, size, num, total, family = struct.unpack_from("<8I", blk, 0)
        (mend,) = struct.unpack_from("<I", blk, 508)
        if (m0, m1, mend) != (MAGIC0, MAGIC1, MAGIC_END):
            fail(f"block {i}: bad magic")
        if not flags & 0x2000 or flags & 0x1:
            fail(f"block {i}: flags 0x{flags:x}")
        if family != FAMILY_RP2040:
            fail(f"block {i}: family 0x{family:08x}")
        if size != 256 or addr % 256 or not (FLASH_BASE <= addr and addr + 256 <= FLASH_BASE + FLASH_BYTES):
            fail(f"block {i}: payload {size} at 0x{addr:08x}")
        if num != i or total != n:
            fail(f"block {i}: numbered {num} of {total}, file has {n}")
        if any(blk[32 + 256:508]):
            fail(f"block {i}: padding not zero")
        if addr in pages:
            fail(f"block {i}: 0x{addr:08x} written twice")
        pages[addr] = blk[32:32 + 256]
    return pages


def load_segments(elf):
    if elf[:4] != b"\x7fELF" or elf[4] != 1 or elf[5] != 1:
        fail("not an ELF32 little-endian file")
    (phoff,) = struct.unpack_from("<I", elf, 28)
    phentsize, phnum = struct.unpack_from("<HH", elf, 42)
    segs = []
    for i in range(phnum):
        p_type, p_offset, _vaddr, p_paddr, p_filesz = struct.unpack_from("<5I", elf, phoff + i * phentsize)
        if p_type == 1 and p_filesz:
            segs.append((p_paddr, elf[p_offset:p_offset + p_filesz]))
    return segs


def main():
    args = [a for a in sys.argv[1:] if a != "--image"]
    image = "--image" in sys.argv
    if not args:
        fail("usage: uf2_check.py FILE.uf2 [IMAGE.elf] [--image]")
    pages = read_blocks(open(args[0], "rb").read())
    summary = f"{args[0]}: {len(pages)} blocks ok"
    if image:
        if FLASH_BASE not in pages:
            fail("no boot2 block at 0x10000000")
        boot2 = pages[FLASH_BASE]
        stored = struct.unpack_from("<I", boot2, 252)[0]
        if crc32_mpeg2(boot2[:252]) != stored:
            fail(f"boot2 CRC 0x{crc32_mpeg2(boot2[:252]):08x} != stored 0x{stored:08x}")
        summary += f", boot2 CRC 0x{stored:08x} ok"
    if len(args) > 1:
        covered = {}
        for addr, data in load_segments(open(args[1], "rb").read()):
            for k, byte in enumerate(data):
                covered[addr + k] = byte
        for addr, byte in covered.items():
            page = pages.get(addr & ~0xFF)
            if page is None or page[addr & 0xFF] != byte:
                fail(f"ELF byte at 0x{addr:08x} missing or different in the UF2")
        for base, page in pages.items():
            for k, byte in enumerate(page):
                if base + k not in covered and byte != 0:
                    fail(f"UF2 writes 0x{byte:02x} at 0x{base + k:08x}, which no ELF segment covers")
        summary += f", matches the ELF's {len(covered)} loadable bytes"
    print("uf2_check: " + summary)


if __name__ == "__main__":
    main()
