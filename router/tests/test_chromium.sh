#!/usr/bin/env bash
# A real browser: headless Chromium opens a bootstrap URL, follows the redirect with
# the cookie it got, and loads the page and its sub-resources (stylesheet, image)
# through the router; a screenshot of it is taken and checked.
. "$(dirname "$(readlink -f "$0")")/lib.sh"
browser=$(command -v chromium || true)
[[ -n $browser ]] || skip "chromium not installed (scripts/deps chromium)"

start_backend box1:8080
start_router
tok=$(mint box1 8080)
bootstrap="http://box1--8080.localhost:$PORT/_svc/auth?token=$tok&next=/"

chrome() { # extra flags...; a fresh profile each time
    local profile
    profile=$(mktemp -d "$WORK/profile.XXXXXX")
    timeout 50 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --disable-dev-shm-usage --user-data-dir="$profile" --host-resolver-rules="MAP * 127.0.0.1" \
        --window-size=800,600 "$@" 2>> "$WORK/chromium.log"
}

say "page through the bootstrap URL"
dom=$(chrome --dump-dom "$bootstrap")
check_has "page loaded after the redirect" "hello from box1:8080" "$dom"
check_lacks "not the router's refusal" "Authentication required" "$dom"

say "screenshot"
chrome --screenshot="$WORK/shot.png" "$bootstrap" > /dev/null
size=$(stat -c %s "$WORK/shot.png" 2>/dev/null || echo 0)
magic=$(head -c 8 "$WORK/shot.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')
check "screenshot is a PNG" "89504e470d0a1a0a" "$magic"
if (( size > 2000 )); then echo "ok   screenshot not empty ($size bytes)"; else fail "screenshot is $size bytes"; fi
colors=$(python3 - "$WORK/shot.png" <<'PY'
import struct, sys, zlib
d = open(sys.argv[1], "rb").read()
pos, idat, w, h, ctype = 8, b"", 0, 0, 0
while pos < len(d):
    n, kind = struct.unpack("!I4s", d[pos:pos + 8])
    body = d[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        w, h, depth, ctype = struct.unpack("!IIBB", body[:10])
    elif kind == b"IDAT":
        idat += body
    pos += 12 + n
raw = zlib.decompress(idat)
bpp = {2: 3, 6: 4}[ctype]
stride = w * bpp
# Undo the PNG row filters, then count pixels of the page's background and image colours.
prev, rows, off = bytearray(stride), [], 0
for y in range(h):
    f, line = raw[off], bytearray(raw[off + 1:off + 1 + stride])
    off += 1 + stride
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0
        b, c = prev[i], prev[i - bpp] if i >= bpp else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    rows.append(line)
    prev = line
green = red = 0
for line in rows[::4]:
    for x in range(0, w, 4):
        px = tuple(line[x * bpp:x * bpp + 3])
        green += px == (0x33, 0xaa, 0x66)
        red += px == (0xcc, 0x33, 0x33)
print("stylesheet=%s image=%s" % (green > 100, red > 100))
PY
)
check "stylesheet and image rendered" "stylesheet=True image=True" "$colors"

say "sub-resources came through the router with the cookie"
hits=$(c -H "X-Sbx-Service-Token: $tok" "$(url box1 8080 /hits)")
check_has "stylesheet fetched" "css" "$hits"
check_has "image fetched" "img" "$hits"
grep -q "browser bootstrap, cookie set" "$WORK/router.log" && echo "ok   bootstrap logged" || fail "no bootstrap in log"

finish
