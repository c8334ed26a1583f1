#!/bin/sh
# The fan-out child: scalesocket sh -- scripts/bench/fanout.sh
#
# Waits on stdin for the start message ("start N" / {"start":N}, or {"route":N} under --json), then prints N
# numbered 64-byte lines as fast as it can: "00000042 xxx..." or {"n":42,"p":"xxx..."}; for "route",
# {"_to":ID,"n":K,"p":"xxx..."} round-robin over the clients that joined (their IDs come from the --json join
# messages), K counting per client. Then it reads stdin until the server closes it, so the room stays open
# until the benchmark disconnects.
#
# sh reads the control lines (its `read` takes a pipe byte by byte, so nothing meant for later is swallowed;
# mawk would wait for a full input buffer); awk prints, block-buffered as any program writing to a pipe.
ids=""
while IFS= read -r line; do
  case $line in
    *'"t":"Join"'*)
      id=${line##*\"_from\":}
      ids="$ids ${id%%[!0-9]*}"
      ;;
    *start* | *route*) break ;;
  esac
done
case $line in
  *route*) mode=route rest=${line#*route} ;;
  *'{'*) mode=json rest=${line#*start} ;;
  *) mode=plain rest=${line#*start} ;;
esac
rest=${rest#\"}
n=${rest#[: ]}
n=${n%%[!0-9]*}
awk -v n="$n" -v mode="$mode" -v ids="$ids" 'BEGIN {
  pad = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
  if (mode == "route") {
    k = split(ids, id, " ")
    for (i = 0; i < n; i++) {
      h = sprintf("{\"_to\":%s,\"n\":%d,\"p\":\"", id[i % k + 1], int(i / k))
      printf "%s%s\"}\n", h, substr(pad, 1, 62 - length(h))
    }
  } else if (mode == "json") {
    for (i = 0; i < n; i++) {
      h = sprintf("{\"n\":%d,\"p\":\"", i)
      printf "%s%s\"}\n", h, substr(pad, 1, 62 - length(h))
    }
  } else {
    for (i = 0; i < n; i++) printf "%08d %s\n", i, substr(pad, 1, 55)
  }
}'
exec cat >/dev/null
