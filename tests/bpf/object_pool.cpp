#include "object_pool.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdlib>
#include <deque>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernel/kernel_error.h"
#include "xnat/maps.h"

namespace xnat::test {

namespace {

// More would only hold memory: tests use at most two objects at once, and few table sizes.
constexpr size_t kMaxIdle = 4;

struct Idle {
    uint32_t max_connections;
    Skeleton skel;
};

// Most recently handed back last; the oldest goes when the pool is full.
std::deque<Idle> &idle()
{
    static std::deque<Idle> pool;
    return pool;
}

Skeleton load_object(uint32_t max_connections)
{
    capture_libbpf_log();
    Skeleton skel(xnat_bpf__open());
    if (!skel)
        throw std::runtime_error("open skeleton");
    if (auto sized = size_connection_tables(skel, max_connections, max_connections + XNAT_SNAT_HEADROOM); !sized)
        throw std::runtime_error(sized.error().message);
    if (int err = xnat_bpf__load(skel.get()))
        throw std::runtime_error("load BPF object: " + std::to_string(err) + " " + last_libbpf_warning());
    return skel;
}

[[noreturn]] void fail(const bpf_map *m, const char *what)
{
    throw std::runtime_error(std::string("reset map ") + bpf_map__name(m) + ": " + what + ": " +
                             std::to_string(errno));
}

void zero_array(const bpf_map *m)
{
    size_t size = bpf_map__value_size(m);
    if (bpf_map__type(m) == BPF_MAP_TYPE_PERCPU_ARRAY)
        size = ((size + 7) / 8 * 8) * static_cast<size_t>(libbpf_num_possible_cpus());
    std::vector<unsigned char> zeros(size);
    for (uint32_t i = 0; i < bpf_map__max_entries(m); ++i)
        // Overwriting an element that holds a bpf_timer also cancels and frees the timer.
        if (bpf_map_update_elem(bpf_map__fd(m), &i, zeros.data(), BPF_ANY))
            fail(m, "zero element");
}

void delete_all_keys(const bpf_map *m)
{
    std::vector<unsigned char> key(bpf_map__key_size(m));
    // Always from the first key: deleting the key an iteration stands on restarts it anyway.
    while (bpf_map_get_next_key(bpf_map__fd(m), nullptr, key.data()) == 0)
        if (bpf_map_delete_elem(bpf_map__fd(m), key.data()))
            fail(m, "delete key");
    if (errno != ENOENT)
        fail(m, "walk keys");
}

void empty_slots(const bpf_map *m)
{
    for (uint32_t i = 0; i < bpf_map__max_entries(m); ++i)
        if (bpf_map_delete_elem(bpf_map__fd(m), &i) && errno != ENOENT)
            fail(m, "empty slot");
}

void drain_queue(const bpf_map *m)
{
    std::vector<unsigned char> value(bpf_map__value_size(m));
    while (bpf_map_lookup_and_delete_elem(bpf_map__fd(m), nullptr, value.data()) == 0) {
    }
    if (errno != ENOENT)
        fail(m, "drain queue");
}

void reset_map(const bpf_map *m)
{
    // .rodata and .kconfig are frozen at load; nothing can have changed them.
    if (bpf_map__map_flags(m) & BPF_F_RDONLY_PROG)
        return;
    // An initialised .data would need its initial image back, which libbpf no longer holds
    // after load; the object has only .bss, whose initial image is zeros.
    if (bpf_map__is_internal(m) && std::string(bpf_map__name(m)).find(".bss") == std::string::npos)
        fail(m, "a writable global section other than .bss cannot be reset");
    switch (bpf_map__type(m)) {
    case BPF_MAP_TYPE_ARRAY:
    case BPF_MAP_TYPE_PERCPU_ARRAY:
        zero_array(m);
        return;
    case BPF_MAP_TYPE_HASH:
    case BPF_MAP_TYPE_LRU_HASH:
    case BPF_MAP_TYPE_LPM_TRIE:
    case BPF_MAP_TYPE_DEVMAP_HASH:
        delete_all_keys(m);
        return;
    case BPF_MAP_TYPE_ARRAY_OF_MAPS:
        empty_slots(m);
        return;
    case BPF_MAP_TYPE_QUEUE:
        drain_queue(m);
        return;
    default:
        errno = 0;
        fail(m, "no reset for this map type");
    }
}

} // namespace

bool fresh_objects_wanted()
{
    const char *v = std::getenv("XNAT_TEST_FRESH_OBJECTS");
    return v && *v && std::string(v) != "0";
}

void reset_object_state(const Skeleton &skel)
{
    // The sweeper first, so that its walk does not run while the tables empty.
    zero_array(skel->maps.XNAT_MAP_SWEEP);
    const bpf_map *m;
    bpf_object__for_each_map(m, skel->obj) reset_map(m);
}

PooledObject::PooledObject(uint32_t max_connections) : max_connections_(max_connections)
{
    auto &pool = idle();
    for (auto it = pool.rbegin(); it != pool.rend(); ++it)
        if (it->max_connections == max_connections) {
            skel_ = std::move(it->skel);
            pool.erase(std::next(it).base());
            reset_object_state(skel_);
            return;
        }
    skel_ = load_object(max_connections);
}

PooledObject::~PooledObject()
{
    if (!skel_ || fresh_objects_wanted())
        return;
    auto &pool = idle();
    pool.push_back({max_connections_, std::move(skel_)});
    if (pool.size() > kMaxIdle)
        pool.pop_front();
}

} // namespace xnat::test
