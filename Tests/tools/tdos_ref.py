#!/usr/bin/env python3
"""Independent reference implementation of the TDOS v1 frame (docs/PROTOCOL.md),
written from the document alone, in the standard library only. The tests use it
to produce the golden vectors and to cross-check the Swift codec both ways.

  tdos_ref.py vectors            print the golden vectors (name, key hex, frame hex)
  tdos_ref.py decode KEYHEX HEX  verify and decode a frame, print it as JSON
"""
import hashlib, hmac, json, struct, sys, zlib

TAG_BYTES = 16
TYPES = {"announce": 1, "query": 2, "request": 3, "response": 4, "ack": 5,
         "heartbeat": 6, "error": 7, "config_update": 8, "metrics": 9, "leave": 10}
F_COMPRESSED, F_ACK, F_REF, F_RELAYED = 1, 2, 4, 8


def cbor_head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    for ai, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
        if n < 1 << (8 * struct.calcsize(fmt)):
            return bytes([major << 5 | ai]) + struct.pack(fmt, n)
    raise ValueError(n)


def cbor(v):
    """Preferred serialization (RFC 8949 4.1): shortest heads, shortest exact float."""
    if v is True: return b"\xf5"
    if v is False: return b"\xf4"
    if v is None: return b"\xf6"
    if isinstance(v, int):
        return cbor_head(0, v) if v >= 0 else cbor_head(1, -1 - v)
    if isinstance(v, float):
        for code, fmt in ((0xF9, ">e"), (0xFA, ">f")):
            try:
                packed = struct.pack(fmt, v)
            except OverflowError:
                continue
            if struct.unpack(fmt, packed)[0] == v:
                return bytes([code]) + packed
        return b"\xfb" + struct.pack(">d", v)
    if isinstance(v, bytes): return cbor_head(2, len(v)) + v
    if isinstance(v, str):
        b = v.encode(); return cbor_head(3, len(b)) + b
    if isinstance(v, list): return cbor_head(4, len(v)) + b"".join(cbor(x) for x in v)
    if isinstance(v, dict):
        return cbor_head(5, len(v)) + b"".join(cbor(k) + cbor(x) for k, x in v.items())
    raise TypeError(type(v))


def uncbor(b, i=0):
    ib = b[i]; major, ai = ib >> 5, ib & 31; i += 1
    if major == 7:
        if ai == 20: return False, i
        if ai == 21: return True, i
        if ai == 22: return None, i
        if ai == 25: return struct.unpack(">e", b[i:i+2])[0], i + 2
        if ai == 26: return struct.unpack(">f", b[i:i+4])[0], i + 4
        if ai == 27: return struct.unpack(">d", b[i:i+8])[0], i + 8
        raise ValueError("simple")
    if ai < 24: n = ai
    elif ai <= 27:
        size = 1 << (ai - 24); n = int.from_bytes(b[i:i+size], "big"); i += size
    else: raise ValueError("indefinite or reserved")
    if major == 0: return n, i
    if major == 1: return -1 - n, i
    if major == 2: return b[i:i+n], i + n
    if major == 3: return b[i:i+n].decode(), i + n
    if major == 4:
        out = []
        for _ in range(n):
            x, i = uncbor(b, i); out.append(x)
        return out, i
    if major == 5:
        out = {}
        for _ in range(n):
            k, i = uncbor(b, i); x, i = uncbor(b, i); out[k] = x
        return out, i
    if major == 6:
        return uncbor(b, i)
    raise ValueError(major)


def leb(n):
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80); n >>= 7
    out.append(n)
    return bytes(out)


def unleb(b, i):
    n = shift = 0
    while True:
        byte = b[i]; i += 1
        n |= (byte & 0x7F) << shift; shift += 7
        if byte < 0x80: return n, i


def fnv1a32(name):
    h = 0x811C9DC5
    for c in name.encode():
        h = ((h ^ c) * 0x01000193) & 0xFFFFFFFF
    return h


def encode_frame(key, type_, sender, epoch, seq, ts_ms, payload, key_id=0, priority=1,
                 flags=0, ref=None, compress=False, version=(1, 0)):
    if ref is not None: flags |= F_REF
    body = payload
    if compress:
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        body = c.compress(payload) + c.flush(); flags |= F_COMPRESSED
    out = bytes([version[0] << 4 | version[1], type_, flags, priority << 6 | key_id])
    out += struct.pack(">I", sender) + leb(epoch) + leb(seq)
    if ref is not None: out += leb(ref[0]) + leb(ref[1])
    out += struct.pack(">I", ts_ms) + body
    return out + hmac.new(key, out, hashlib.sha256).digest()[:TAG_BYTES]


def decode_frame(key, frame):
    body, tag = frame[:-TAG_BYTES], frame[-TAG_BYTES:]
    if not hmac.compare_digest(hmac.new(key, body, hashlib.sha256).digest()[:TAG_BYTES], tag):
        raise ValueError("bad tag")
    v, t, flags, kb = body[0], body[1], body[2], body[3]
    sender = struct.unpack(">I", body[4:8])[0]
    epoch, i = unleb(body, 8); seq, i = unleb(body, i)
    ref = None
    if flags & F_REF:
        e2, i = unleb(body, i); s2, i = unleb(body, i); ref = [e2, s2]
    ts = struct.unpack(">I", body[i:i+4])[0]; i += 4
    payload = body[i:]
    if flags & F_COMPRESSED:
        payload = zlib.decompressobj(-15).decompress(payload)
    value = uncbor(payload)[0] if payload else {}
    return {"major": v >> 4, "minor": v & 15, "type": t, "flags": flags & 15, "priority": kb >> 6,
            "key_id": kb & 63, "sender": sender, "id": [epoch, seq], "ref": ref, "timestamp_ms": ts,
            "payload_hex": payload.hex(), "payload": jsonable(value)}


def jsonable(v):
    if isinstance(v, dict): return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, list): return [jsonable(x) for x in v]
    if isinstance(v, bytes): return v.hex()
    return v


GOLDEN_KEY = bytes(range(32))      # key id 1 in every vector
SENDER = 0x0A0B0C0D


def vectors():
    k = GOLDEN_KEY
    temp = {1: "temp_sensor", 2: [1, 2, 0], 3: 2, 4: 3, 5: 0, 6: 4210}
    config_entries = {f"sensors.temp_sensor.calibration_{i}": 0.25 * i for i in range(6)}
    return [
        ("announce", encode_frame(k, 1, SENDER, 1, 7, 123456, cbor({1: [temp], 2: "temp-a"}), key_id=1)),
        ("heartbeat", encode_frame(k, 6, SENDER, 1, 8, 124000,
                                   cbor({1: 3600, 2: 151552, 3: 42, 4: 17, 5: 0xBEEF}), key_id=1)),
        ("request_read", encode_frame(k, 3, 0x01020304, 2, 300, 5000, cbor({1: fnv1a32("temp_sensor")}),
                                      key_id=1, priority=2, flags=F_ACK)),
        ("response_read", encode_frame(k, 4, SENDER, 1, 9, 124010, cbor({2: 21.5, 3: 1}),
                                       key_id=1, priority=2, ref=(2, 300))),
        ("request_retransmit", encode_frame(k, 3, 0x01020304, 2, 301, 7000, cbor({1: fnv1a32("temp_sensor"), 4: 3000}),
                                            key_id=1, priority=2, flags=F_ACK, ref=(2, 300))),
        ("query_all", encode_frame(k, 2, 0x01020304, 2, 1, 10, cbor({}), key_id=1)),
        ("ack", encode_frame(k, 5, SENDER, 1, 10, 124020, b"", key_id=1, ref=(2, 302))),
        ("error_version", encode_frame(k, 7, SENDER, 1, 11, 124030, cbor({1: 23, 3: 1, 4: 1}), key_id=1)),
        ("leave", encode_frame(k, 10, SENDER, 1, 12, 124040, cbor({1: 0}), key_id=1)),
        ("metrics", encode_frame(k, 9, SENDER, 1, 13, 124050, cbor({1: 3600, 2: 1234, 3: 2, 20: 0.5}), key_id=1)),
        ("config_update_compressed", encode_frame(k, 8, 0x01020304, 2, 400, 9000,
                                                  cbor({1: 7, 2: config_entries}), key_id=1, flags=F_ACK, compress=True)),
        ("future_minor_unknown_keys", encode_frame(k, 6, SENDER, 1, 14, 125000,
                                                   cbor({1: 3601, 2: 151000, 3: 40, 4: 15, 5: 0xBEEF,
                                                         99: {"new": [1, 2.5, b"x"]}, 100: "later"}),
                                                   key_id=1, version=(1, 3))),
    ]


if __name__ == "__main__":
    if sys.argv[1] == "vectors":
        print("key", GOLDEN_KEY.hex())
        for name, frame in vectors():
            print(name, frame.hex())
    elif sys.argv[1] == "decode":
        print(json.dumps(decode_frame(bytes.fromhex(sys.argv[2]), bytes.fromhex(sys.argv[3]))))
    elif sys.argv[1] == "encode":  # encode KEYHEX TYPE SENDER EPOCH SEQ TS PAYLOADHEX
        a = sys.argv[2:]
        print(encode_frame(bytes.fromhex(a[0]), int(a[1]), int(a[2]), int(a[3]), int(a[4]), int(a[5]),
                           bytes.fromhex(a[6]), key_id=1).hex())
