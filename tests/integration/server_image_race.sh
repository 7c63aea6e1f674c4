#!/usr/bin/env bash
# Acceptance: an image delete racing uploads of the same bytes never leaves a record without
# its file. Rounds of one delete and uploads of the same image at once (a bounded number), and
# after each round: if the image is recorded, its file is there, and it can be downloaded.
. "$(dirname "$0")/server_lib.sh"

make_pki
write_config
start_otad

head -c 200000 /dev/urandom >"$T/img.bin"
sha=$(sha256sum "$T/img.bin" | cut -d' ' -f1)
up() { mcurl admin /api/v1/images --data-binary @"$T/img.bin" -H 'Content-Type: application/octet-stream' >/dev/null; }
orphans=0
for round in $(seq 1 25); do
	up
	up & a=$!
	mcurl admin "/api/v1/images/$sha" -X DELETE >/dev/null & b=$!
	up & c=$!
	wait $a $b $c
	if [ "$(db "SELECT count(*) FROM images WHERE sha256='$sha'")" != 0 ] &&
		[ ! -f "$DATA/images/$sha" ]; then
		orphans=$((orphans + 1))
		up # the next round starts from a recorded image with its file
	fi
done
expect "rounds leaving a record without its file" 0 "$orphans"
# A final state that is whole: recorded and on disk, or neither.
up
expect "recorded" 1 "$(db "SELECT count(*) FROM images WHERE sha256='$sha'")"
expect "on disk" yes "$([ -f "$DATA/images/$sha" ] && echo yes)"
r=$(mcurl admin "/api/v1/images/$sha" -X DELETE)
expect "deleted" 200 "$(code_of "$r")"
expect "no record" 0 "$(db "SELECT count(*) FROM images WHERE sha256='$sha'")"
expect "no file" no "$([ -f "$DATA/images/$sha" ] && echo yes || echo no)"
finish
