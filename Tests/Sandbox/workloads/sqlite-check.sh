#!/bin/sh
# INSIDE a second sandbox: the database written by sqlite-fill.sh is intact
# and holds exactly the expected rows.
#   sh sqlite-check.sh DB EXPECTED_ROWS_MD5
set -u
db=$1 want=$2
check=$(sqlite3 "$db" 'PRAGMA integrity_check;' 2>&1)
if [ "$check" = ok ]; then echo "ok: PRAGMA integrity_check"; else echo "FAIL: PRAGMA integrity_check: $check"; fi
got=$(sqlite3 "$db" 'SELECT id, n, v FROM t ORDER BY id;' | md5sum | cut -d' ' -f1)
if [ "$got" = "$want" ]; then echo "ok: row data as expected"; else echo "FAIL: row data: md5 $got, want $want"; fi
by_index=$(sqlite3 "$db" 'SELECT count(*) FROM t WHERE n BETWEEN 100 AND 2000;')
by_scan=$(sqlite3 "$db" 'SELECT count(*) FROM t NOT INDEXED WHERE n BETWEEN 100 AND 2000;')
if [ "$by_index" = "$by_scan" ]; then echo "ok: index agrees with the table"; else echo "FAIL: index $by_index, table $by_scan"; fi
echo "state: rows-md5 $got range $by_index"
echo done
