// BPF packet tests. They need root (BPF_PROG_TEST_RUN, map creation) and run in a network
// namespace of their own, so route lookups see only the test's interfaces, never the host's.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <sched.h>
#include <unistd.h>

#include <cstdio>

int main(int argc, char **argv)
{
    if (::geteuid() != 0) {
        std::fprintf(stderr, "\n*** BPF packet tests need root (BPF_PROG_TEST_RUN); NOT RUN ***\n\n");
        return 1;
    }
    if (::unshare(CLONE_NEWNET) != 0) {
        std::perror("unshare(CLONE_NEWNET)");
        return 1;
    }
    return Catch::Session().run(argc, argv);
}
