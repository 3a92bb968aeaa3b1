// Runs SQL statements with DuckDB (@duckdb/node-api, pinned in
// package-lock.json) and prints the rows of each as one JSON array per
// line: how t/64-duckdb.t queries an archive in place.
//
//   node t/node/duckdb-query.js "SELECT ..." ["SELECT ..." ...]
//
// Values DuckDB returns as BIGINT or DECIMAL come out as strings
// (getRowObjectsJson), so the caller compares them as such.  An error
// prints "ERROR: message" on stderr and exits 1.

'use strict';

const { DuckDBInstance } = require('@duckdb/node-api');

async function main(queries) {
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();

    for (const sql of queries) {
        const reader = await connection.runAndReadAll(sql);
        process.stdout.write(JSON.stringify(reader.getRowObjectsJson()) + '\n');
    }
}

main(process.argv.slice(2)).catch((e) => {
    process.stderr.write('ERROR: ' + (e && e.message ? e.message : e) + '\n');
    process.exit(1);
});
