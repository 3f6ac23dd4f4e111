// Typed access to BPF maps by fd.
#pragma once

#include <bpf/bpf.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"
#include "kernel/kernel_error.h"

namespace xnat {

template <typename K, typename V>
Result<std::optional<V>> map_lookup(int fd, const K &key, const char *map_name)
{
    V value{};
    if (bpf_map_lookup_elem(fd, &key, &value) == 0)
        return std::optional<V>(value);
    if (errno == ENOENT)
        return std::optional<V>();
    return kernel_error(std::string("read ") + map_name, errno);
}

template <typename K, typename V>
Result<void> map_update(int fd, const K &key, const V &value, const char *map_name,
                        unsigned long long flags = BPF_ANY)
{
    if (bpf_map_update_elem(fd, &key, &value, flags) != 0)
        return kernel_error(std::string("write ") + map_name, errno);
    return {};
}

template <typename K> Result<void> map_delete(int fd, const K &key, const char *map_name)
{
    if (bpf_map_delete_elem(fd, &key) != 0 && errno != ENOENT)
        return kernel_error(std::string("delete from ") + map_name, errno);
    return {};
}

// Visits every key. Keys deleted while walking are skipped; the walk does not restart.
template <typename K>
Result<void> map_for_each_key(int fd, const char *map_name, const std::function<void(const K &)> &fn)
{
    K key{}, next{};
    const K *prev = nullptr;
    while (true) {
        if (bpf_map_get_next_key(fd, prev, &next) != 0) {
            if (errno == ENOENT)
                return {};
            return kernel_error(std::string("walk ") + map_name, errno);
        }
        fn(next);
        key = next;
        prev = &key;
    }
}

// Entries fetched per BPF_MAP_LOOKUP_BATCH call. At 4096 a million-entry table takes a few
// hundred system calls instead of two per entry, and the buffers stay well under a megabyte.
inline constexpr uint32_t kMapBatchEntries = 4096;

// Visits every entry, key and value. Not for per-CPU maps (their values are arrays).
//
// Reads the map in chunks with BPF_MAP_LOOKUP_BATCH (5.6+); a kernel or map type without it
// (EINVAL, ENOTSUPP, EOPNOTSUPP on the first call) is read key by key instead, with one lookup
// per key. Either way the map is not frozen: an entry added or removed during the walk may or
// may not be seen, and none is seen twice.
template <typename K, typename V>
Result<void> map_for_each_entry(int fd, const char *map_name, const std::function<void(const K &, const V &)> &fn,
                                uint32_t chunk = kMapBatchEntries)
{
    constexpr int kEnotsupp = 524; // the kernel's internal ENOTSUPP, which the batch ops leak
    // The position token is opaque: a bucket index for hash maps, a key for others.
    constexpr size_t kTokenSize = std::max<size_t>(sizeof(K), sizeof(uint64_t));
    alignas(uint64_t) unsigned char token[kTokenSize] = {};
    alignas(uint64_t) unsigned char next_token[kTokenSize] = {};
    std::vector<K> keys(chunk);
    std::vector<V> values(chunk);
    bool first = true;
    while (true) {
        uint32_t count = chunk;
        int rc = bpf_map_lookup_batch(fd, first ? nullptr : token, next_token, keys.data(), values.data(), &count,
                                      nullptr);
        int err = rc == 0 ? 0 : errno;
        if (rc != 0 && err == ENOSPC) {
            // One hash bucket holds more entries than a chunk: nothing was read, retry bigger.
            if (chunk >= (1u << 24))
                return kernel_error(std::string("read ") + map_name + " in batches", err);
            chunk *= 2;
            keys.resize(chunk);
            values.resize(chunk);
            continue;
        }
        if (rc != 0 && err != ENOENT) {
            if (first && (err == EINVAL || err == kEnotsupp || err == EOPNOTSUPP))
                break;
            return kernel_error(std::string("read ") + map_name + " in batches", err);
        }
        for (uint32_t i = 0; i < count; ++i)
            fn(keys[i], values[i]);
        if (rc != 0) // ENOENT: the last chunk, possibly empty
            return {};
        std::copy(std::begin(next_token), std::end(next_token), std::begin(token));
        first = false;
    }
    Result<void> failed;
    auto walked = map_for_each_key<K>(fd, map_name, [&](const K &key) {
        if (!failed)
            return;
        auto value = map_lookup<K, V>(fd, key, map_name);
        if (!value)
            failed = value.error();
        else if (*value) // gone since the walk saw its key
            fn(key, **value);
    });
    if (!walked)
        return walked;
    return failed;
}

// Every entry, in the map's order.
template <typename K, typename V>
Result<std::vector<std::pair<K, V>>> map_dump(int fd, const char *map_name)
{
    std::vector<std::pair<K, V>> out;
    auto r = map_for_each_entry<K, V>(fd, map_name, [&](const K &k, const V &v) { out.emplace_back(k, v); });
    if (!r)
        return r.error();
    return out;
}

} // namespace xnat
