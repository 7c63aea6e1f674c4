#!/usr/bin/env bash
# Acceptance: an image delete racing uploads of the same bytes never leaves a record without
# its file. Rounds of one delete and uploads of the same image at once (a bounded number), and
# after each round: if the image is recorded, its file is there, and it can be downloaded.
# Then, when otad has its test pause points (OTA_TEST_HOOKS, docs/testing.md), the one window
# that matters exactly: an upload of recorded bytes held between placing its file and committing
# its record while a delete runs; a record must never outlive its file, nor a file its record.
. "$(dirname "$0")/server_lib.sh"

make_pki
write_config
HOOKS=$T/hooks
mkdir -p "$HOOKS"
export OTAD_TEST_HOOK_DIR=$HOOKS
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

# The exact window (test hook): the image recorded with its file; an upload of the same bytes
# held after placing the file (there already: nothing written) and before its record; a delete
# sent then, given time to finish if nothing holds it; then the upload let go.
if [ "${OTA_TEST_HOOKS:-OFF}" == ON ]; then
	up
	point=$HOOKS/image-upload-placed
	: >"$point.pause"
	up & a=$!
	for _ in $(seq 1 500); do [ -f "$point.paused" ] && break; sleep 0.02; done
	expect "the upload is held between its file and its record" yes "$([ -f "$point.paused" ] && echo yes)"
	mcurl admin "/api/v1/images/$sha" -X DELETE >"$T/del.out" & b=$!
	for _ in $(seq 1 100); do kill -0 $b 2>/dev/null || break; sleep 0.02; done
	: >"$point.continue"
	wait $a $b
	recorded=$(db "SELECT count(*) FROM images WHERE sha256='$sha'")
	on_disk=$([ -f "$DATA/images/$sha" ] && echo 1 || echo 0)
	expect "after the window: recorded exactly when on disk (record, file)" "$on_disk $on_disk" "$recorded $on_disk"
	expect "the delete answered" 200 "$(code_of "$(cat "$T/del.out")")"
	[ "$recorded" == 1 ] || up
fi
# A final state that is whole: recorded and on disk, or neither.
up
expect "recorded" 1 "$(db "SELECT count(*) FROM images WHERE sha256='$sha'")"
expect "on disk" yes "$([ -f "$DATA/images/$sha" ] && echo yes)"
r=$(mcurl admin "/api/v1/images/$sha" -X DELETE)
expect "deleted" 200 "$(code_of "$r")"
expect "no record" 0 "$(db "SELECT count(*) FROM images WHERE sha256='$sha'")"
expect "no file" no "$([ -f "$DATA/images/$sha" ] && echo yes || echo no)"
finish
