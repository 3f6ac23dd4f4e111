// Typed access to BPF maps by fd.
#pragma once

#include <bpf/bpf.h>

#include <cerrno>
#include <functional>
#include <optional>
#include <string>

#include "kernel_error.h"
#include "result.h"

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

} // namespace xnat
