#!/usr/bin/env bash
# Every way in and every refusal: header token, bearer, cookie from the browser
# bootstrap URL, expired links, tokens for another port or sandbox, forged tokens,
# and `next` values that would redirect off the host.
. "$(dirname "$(readlink -f "$0")")/lib.sh"

start_backend box1:8080 box1:9000 box2:8080
start_router
tok=$(mint box1 8080)
code() { c -o /dev/null -w '%{http_code}' "$@"; }

say "tokens in headers"
check "no token: 401" 401 "$(code "$(url box1 8080 /headers)")"
out=$(c "$(url box1 8080 /headers)")
check_has "no token says so" "Authentication required" "$out"
check "X-Sbx-Service-Token" 200 "$(code -H "X-Sbx-Service-Token: $tok" "$(url box1 8080 /headers)")"
check "Authorization: Bearer" 200 "$(code -H "Authorization: Bearer $tok" "$(url box1 8080 /headers)")"
check "cookie" 200 "$(code -b "sbx_svc=$tok" "$(url box1 8080 /headers)")"
check "token for another port: 403" 403 "$(code -H "X-Sbx-Service-Token: $(mint box1 9000)" "$(url box1 8080 /)")"
check "token for another sandbox: 403" 403 "$(code -H "X-Sbx-Service-Token: $(mint box2 8080)" "$(url box1 8080 /)")"
out=$(c -H "X-Sbx-Service-Token: $(mint box1 9000)" "$(url box1 8080 /)")
check_has "wrong port says so" "Token is for another service" "$out"

forged=${tok%?}A; [[ $forged == "$tok" ]] && forged=${tok%?}B
check "forged signature: 401" 401 "$(code -H "X-Sbx-Service-Token: $forged" "$(url box1 8080 /)")"
check "garbage token: 401" 401 "$(code -H "X-Sbx-Service-Token: hello" "$(url box1 8080 /)")"
other_key=$WORK/other-key; head -c 32 /dev/urandom > "$other_key"; chmod 600 "$other_key"
alien=$("$BUILD/bin/sbx-router" mint-token --key-file "$other_key" --sandbox box1 --port 8080)
out=$(c -i -H "X-Sbx-Service-Token: $alien" "$(url box1 8080 /)")
check_has "token signed by another key: 401" "Invalid service token" "$out"
retarget=$(echo "$tok" | sed 's/\.8080\./.9000./')
check "port edited in a token: 401" 401 "$(code -H "X-Sbx-Service-Token: $retarget" "$(url box1 9000 /)")"
check "good cookie after a tossed one for another sandbox" 200 \
    "$(code -H "Cookie: sbx_svc=$(mint box2 8080); sbx_svc=$tok" "$(url box1 8080 /headers)")"
check "one good token among bad ones" 200 \
    "$(code -H "X-Sbx-Service-Token: $forged" -b "sbx_svc=$tok" "$(url box1 8080 /headers)")"

head -c 5000000 /dev/zero > "$WORK/big"
check "5 MB upload without token: 401, body skipped" 401 \
    "$(code --data-binary @"$WORK/big" "$(url box1 8080 /upload)")"
check "same without Expect: 100-continue" 401 \
    "$(code -H "Expect:" --data-binary @"$WORK/big" "$(url box1 8080 /upload)")"

say "expiry"
past=$(mint box1 8080 --expires-at $(( $(date +%s) - 5 )))
out=$(c -i -H "X-Sbx-Service-Token: $past" "$(url box1 8080 /)")
check_has "expired token: 401" "HTTP/1.1 401" "$out"
check_has "expired token says so" "Service link has expired" "$out"
check_has "expired code" "X-Sbx-Error: link-expired" "$out"
short=$(mint box1 8080 --ttl 3) # lives 2 to 3 s: whole seconds
check "3 s token works at first" 200 "$(code -H "X-Sbx-Service-Token: $short" "$(url box1 8080 /headers)")"
sleep 3.2
out=$(c -i -H "X-Sbx-Service-Token: $short" "$(url box1 8080 /headers)")
check_has "3 s token dead after 3.2 s" "Service link has expired" "$out"
far=$(mint box1 8080 --expires-at $(( $(date +%s) + 3 * 86400 )))
check "token living over 24 h refused" 401 "$(code -H "X-Sbx-Service-Token: $far" "$(url box1 8080 /headers)")"
out=$("$BUILD/bin/sbx-router" mint-token --key-file "$KEY" --sandbox box1 --port 8080 --ttl 90000 2>&1)
check_has "mint-token refuses ttl over 24 h" "ttl" "$out"

say "browser bootstrap"
jar=$WORK/jar
out=$(c -i -c "$jar" "$(url box1 8080 "/_svc/auth?token=$tok&next=/headers%3Fa%3D1")")
check_has "bootstrap redirects" "HTTP/1.1 302" "$out"
check_has "to next" "Location: /headers?a=1" "$out"
setcookie=$(grep -i '^Set-Cookie' <<<"$out" | tr -d '\r')
check_has "cookie holds the token" "sbx_svc=$tok" "$setcookie"
check_has "HttpOnly" "HttpOnly" "$setcookie"
check_has "SameSite" "SameSite=Lax" "$setcookie"
check_has "Path=/" "Path=/" "$setcookie"
check_lacks "host-only (no Domain)" "Domain" "$setcookie"
check_lacks "no Secure on plain http" "Secure" "$setcookie"
check_has "Max-Age about the token lifetime" "Max-Age=" "$setcookie"
out=$(c -b "$jar" "$(url box1 8080 /headers)")
check_has "cookie from the jar lets in" '"service": "box1:8080"' "$out"
check_lacks "cookie not forwarded to the service" "sbx_svc" "$out"
out=$(c -L -c "$WORK/jar2" -b "$WORK/jar2" "$(url box1 8080 "/_svc/auth?token=$tok&next=/headers")")
check_has "follow bootstrap to the page" '"service": "box1:8080"' "$out"
check "cookie jar not sent to the other port" 401 "$(code -b "$jar" "$(url box1 9000 /headers)")"
out=$(c -i "$(url box1 8080 "/_svc/auth?token=$tok")")
check_has "next defaults to /" "Location: /" "$out"
out=$(c -i "$(url box1 8080 "/_svc/auth?token=$past&next=/")")
check_has "expired bootstrap link" "Service link has expired" "$out"
check_lacks "expired bootstrap sets no cookie" "Set-Cookie" "$out"
out=$(c -i "$(url box1 9000 "/_svc/auth?token=$tok&next=/")")
check_has "bootstrap for another port refused" "HTTP/1.1 403" "$out"
out=$(c -i "$(url box1 8080 "/_svc/auth?next=/")")
check_has "bootstrap without token" "HTTP/1.1 401" "$out"

say "open redirects refused"
for next in "//evil.example/" "https://evil.example/" "/%5Cevil.example" "%2F%2Fevil.example" \
            "/x%0d%0aSet-Cookie:%20a=b" "javascript:alert(1)" "" "/%00"; do
    out=$(c -i "$(url box1 8080 "/_svc/auth?token=$tok&next=$next")")
    check_has "next=$next refused" "HTTP/1.1 400" "$out"
    check_lacks "next=$next sets no cookie" "Set-Cookie" "$out"
done

finish
