# The Debian package: `cpack -G DEB` in a build configured by scripts/package.sh (prefix /usr,
# configs in /etc). It holds what `cmake --install` installs: the tools, the BPF object, the man
# pages, the systemd unit, the example configs and the env file.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME xnat)
set(CPACK_PACKAGE_VENDOR xnat)
set(CPACK_PACKAGE_CONTACT "xnat developers <xnat@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "gateway NAT in eBPF: port forwards and masquerade in XDP and tc")
# The extended description; CPack puts the summary above it.
set(CPACK_PACKAGE_DESCRIPTION "xnat does what iptables DNAT and MASQUERADE do on a Linux gateway, in BPF
programs attached with XDP and tc: port forwards, masquerade with endpoint-independent
mappings, ICMP, hairpin and MSS clamping, with connection state in BPF maps.
xnat-load attaches it and fills its tables from a JSON config, xnat-map changes
rules live and shows connections, xnat-exporter serves Prometheus metrics and
xnat-import translates iptables-save output.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT) # xnat_VERSION_ARCH.deb
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends from the libraries the tools link (dpkg-shlibdeps), so apt pulls them in.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# The install script writes the unit and the env file under DESTDIR, with the final paths in them.
set(CPACK_SET_DESTDIR ON)
set(CPACK_STRIP_FILES ON)

# The operator edits the configs and the env file: dpkg must keep those edits on upgrade.
if(IS_ABSOLUTE "${CMAKE_INSTALL_SYSCONFDIR}")
  set(etc "${CMAKE_INSTALL_SYSCONFDIR}/xnat")
else()
  set(etc "${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_SYSCONFDIR}/xnat")
endif()
set(conffiles "")
foreach(cfg ${XNAT_EXAMPLE_CONFIGS})
  get_filename_component(name ${cfg} NAME)
  string(APPEND conffiles "${etc}/${name}\n")
endforeach()
string(APPEND conffiles "${etc}/xnat.env\n")
file(WRITE ${CMAKE_BINARY_DIR}/debian/conffiles "${conffiles}")
# systemd learns of the unit (and forgets it) without a reboot. Nothing is enabled or started:
# the operator names the interfaces and the config in xnat.env first.
foreach(script postinst postrm)
  file(WRITE ${CMAKE_BINARY_DIR}/debian/${script} "#!/bin/sh\nset -e\nif [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi\n")
  file(CHMOD ${CMAKE_BINARY_DIR}/debian/${script} PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
endforeach()
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${CMAKE_BINARY_DIR}/debian/conffiles ${CMAKE_BINARY_DIR}/debian/postinst
    ${CMAKE_BINARY_DIR}/debian/postrm)

include(CPack)
