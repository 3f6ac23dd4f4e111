// Connections as the table's halves describe them, and how a dump's halves pair up.
#pragma once

#include <cstddef>
#include <vector>

#include "xnat/ct.h"

namespace xnat {

// A flow as both of its halves describe it.
struct Connection {
    xnat_ct_key original_key{};
    xnat_ct_entry original{};
    xnat_ct_entry reply{}; // the reply key is original.peer
    bool reply_missing = false;
};

// One entry of the connection table as stored: a half of a flow.
struct CtHalf {
    xnat_ct_key key{};
    xnat_ct_entry entry{};
};

// Pairs the halves of a table dump: one Connection per original half, with its reply half
// when the dump has it, else reply_missing. Reply halves without an original are left out,
// as the datapath treats them as already expired.
std::vector<Connection> pair_halves(const std::vector<CtHalf> &halves);

// The table as one batched read sees it.
struct ConnectionTable {
    std::vector<Connection> connections;
    size_t entries = 0; // map entries read, halves without a peer included
};

} // namespace xnat
