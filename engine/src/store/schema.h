#pragma once
// The versioned schema of MoE Studio's database (conversations, fine-tuning runs, expert
// telemetry, placement profiles). A database records its version in PRAGMA user_version;
// opening one applies every forward migration from that version to kSchemaVersion, each in
// its own transaction. Past migrations are never edited: tests/data/store holds a frozen copy
// of each version's schema, and tst_store migrates from each of them.
#include <string>
#include <vector>

#include "store/sqlite_db.h"

namespace moe {

constexpr int kSchemaVersion = 5;

// SQL that takes a database from version i to i + 1 (index i).
const std::vector<std::string>& schema_migrations();

// Brings `db` to kSchemaVersion. Throws moe::Error when the file was written by a newer
// MoE Studio (its version is above kSchemaVersion), naming both versions.
void migrate(SqliteDb& db);

}  // namespace moe
