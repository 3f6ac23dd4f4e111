#include "portmap/state_file.h"

#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/json_fields.h"
#include "core/net.h"
#include "core/strict_json.h"

namespace xnat::portmap {
namespace {

using nlohmann::json;

constexpr uint32_t kStateVersion = 1;

// One of two names for a value: `key` must be `a` or `b`.
template <typename E>
Result<E> get_either(const json &j, const char *key, const std::string &path, std::pair<const char *, E> a,
                     std::pair<const char *, E> b)
{
    auto text = get_string(j, key, path);
    if (!text)
        return text.error();
    for (const auto &[name, value] : {a, b})
        if (*text == name)
            return value;
    return invalid_input(path + "." + key + ": expected \"" + a.first + "\" or \"" + b.first + "\"");
}

std::string nonce_to_hex(const Nonce &n)
{
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    for (uint8_t b : n) {
        out += kDigits[b >> 4];
        out += kDigits[b & 0xf];
    }
    return out;
}

std::optional<Nonce> nonce_from_hex(const std::string &text)
{
    auto digit = [](char c) -> int {
        if (c >= '0' && c <= '9')
            return c - '0';
        if (c >= 'a' && c <= 'f')
            return c - 'a' + 10;
        return -1;
    };
    Nonce n{};
    if (text.size() != 2 * n.size())
        return std::nullopt;
    for (size_t i = 0; i < n.size(); ++i) {
        int hi = digit(text[2 * i]), lo = digit(text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return std::nullopt;
        n[i] = static_cast<uint8_t>(hi << 4 | lo);
    }
    return n;
}

Result<Mapping> mapping_from(const json &j, const std::string &path)
{
    if (!j.is_object())
        return invalid_input(path + ": expected an object, got " + json_type(j));
    if (auto r = check_keys(j, path,
                            {"proto", "host", "internal_port", "external_port", "expires", "via", "nonce"});
        !r)
        return r.error();
    Mapping m;
    auto proto =
        get_either(j, "proto", path, std::pair{"tcp", Protocol::tcp}, std::pair{"udp", Protocol::udp});
    if (!proto)
        return proto.error();
    m.proto = *proto;
    auto host = get_string(j, "host", path);
    if (!host)
        return host.error();
    auto addr = parse_ipv4(*host);
    if (!addr)
        return with_context(path + ".host", addr.error());
    m.host = *addr;
    for (auto [key, field] :
         {std::pair{"internal_port", &m.internal_port}, std::pair{"external_port", &m.external_port}}) {
        if (!j.contains(key))
            return invalid_input(path + ": missing \"" + key + "\"");
        auto port = get_uint(j.at(key), path + "." + key, 1, 65535);
        if (!port)
            return port.error();
        *field = static_cast<uint16_t>(*port);
    }
    if (!j.contains("expires"))
        return invalid_input(path + ": missing \"expires\"");
    if (!j.at("expires").is_number_unsigned())
        return invalid_input(path + ".expires: expected seconds, got " + json_type(j.at("expires")));
    m.expires = j.at("expires").get<uint64_t>();
    auto via = get_either(j, "via", path, std::pair{"natpmp", Via::natpmp}, std::pair{"pcp", Via::pcp});
    if (!via)
        return via.error();
    m.via = *via;
    if (j.contains("nonce")) {
        auto nonce = get_string(j, "nonce", path);
        if (!nonce)
            return nonce.error();
        auto bytes = nonce_from_hex(*nonce);
        if (!bytes)
            return invalid_input(path + ".nonce: expected 24 hexadecimal digits");
        m.nonce = *bytes;
    }
    return m;
}

Result<std::map<std::string, uint64_t>> requests_from(const json &j)
{
    if (!j.is_object())
        return invalid_input("requests: expected an object, got " + json_type(j));
    std::map<std::string, uint64_t> out;
    for (const auto &[name, count] : j.items()) {
        if (!count.is_number_unsigned())
            return invalid_input("requests." + name + ": expected a count, got " + json_type(count));
        out[name] = count.get<uint64_t>();
    }
    return out;
}

} // namespace

std::string default_state_path(const std::string &pin_dir)
{
    std::string dir = pin_dir;
    while (dir.size() > 1 && dir.back() == '/') // the same instance, however it is written
        dir.pop_back();
    std::string name = "portmapd";
    if (dir != "/sys/fs/bpf/xnat") {
        for (char c : dir)
            name += (c == '/' ? '-' : c);
    }
    return "/run/xnat/" + name + ".json";
}

const char *protocol_name(Protocol p)
{
    return p == Protocol::tcp ? "tcp" : "udp";
}

const char *via_name(Via v)
{
    return v == Via::pcp ? "pcp" : "natpmp";
}

std::string state_to_json(const State &state)
{
    json list = json::array();
    for (const Mapping &m : state.mappings) {
        json entry = {{"proto", protocol_name(m.proto)},
                      {"host", format_ipv4(m.host)},
                      {"internal_port", m.internal_port},
                      {"external_port", m.external_port},
                      {"expires", m.expires},
                      {"via", via_name(m.via)}};
        if (m.nonce)
            entry["nonce"] = nonce_to_hex(*m.nonce);
        list.push_back(entry);
    }
    json requests = json::object();
    for (const auto &[name, count] : state.requests)
        requests[name] = count;
    return json{{"version", kStateVersion}, {"mappings", list}, {"requests", requests}}.dump(2) + "\n";
}

Result<State> parse_state(std::string_view text)
{
    auto root = parse_strict_json(text);
    if (!root)
        return root.error();
    if (!root->is_object())
        return invalid_input("expected an object, got " + json_type(*root));
    if (auto r = check_keys(*root, "", {"version", "mappings", "requests"}); !r)
        return r.error();
    if (!root->contains("version"))
        return invalid_input("version: missing");
    auto version = get_uint(root->at("version"), "version", kStateVersion, kStateVersion);
    if (!version)
        return version.error();
    if (!root->contains("mappings") || !root->at("mappings").is_array())
        return invalid_input("mappings: expected an array");
    State out;
    std::set<std::tuple<Protocol, uint32_t, uint16_t>> identities;
    std::set<std::pair<Protocol, uint16_t>> external;
    const json &list = root->at("mappings");
    for (size_t i = 0; i < list.size(); ++i) {
        std::string path = "mappings[" + std::to_string(i) + "]";
        auto m = mapping_from(list[i], path);
        if (!m)
            return m.error();
        if (!identities.insert({m->proto, m->host, m->internal_port}).second)
            return invalid_input(path + ": a second mapping of " + format_ipv4(m->host) + ":" +
                                 std::to_string(m->internal_port));
        if (!external.insert({m->proto, m->external_port}).second)
            return invalid_input(path + ".external_port: " + std::to_string(m->external_port) +
                                 " is mapped twice");
        out.mappings.push_back(*m);
    }
    if (root->contains("requests")) {
        auto requests = requests_from(root->at("requests"));
        if (!requests)
            return requests.error();
        out.requests = std::move(*requests);
    }
    return out;
}

} // namespace xnat::portmap
