# Runs at install time (install(SCRIPT)): the unit and the env file name the paths the tools
# and configs are installed at, which `cmake --install --prefix` can change after configuring.
# Expects XNAT_SBIN_DIR, XNAT_ETC_DIR (relative to the prefix, or absolute), XNAT_SOURCE_DIR
# and XNAT_BINARY_DIR, set by an install(CODE) just before.
foreach(var XNAT_SBIN_DIR XNAT_ETC_DIR)
  if(NOT IS_ABSOLUTE "${${var}}")
    set(${var} "${CMAKE_INSTALL_PREFIX}/${${var}}")
  endif()
endforeach()
set(staged "${XNAT_BINARY_DIR}/service")
foreach(unit xnat xnat-portmapd)
  configure_file("${XNAT_SOURCE_DIR}/configs/${unit}.service.in" "${staged}/${unit}.service" @ONLY)
  file(INSTALL "${staged}/${unit}.service" DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
endforeach()
# The env file is the operator's: installed once, never overwritten.
if(EXISTS "$ENV{DESTDIR}${XNAT_ETC_DIR}/xnat.env")
  message(STATUS "Kept: $ENV{DESTDIR}${XNAT_ETC_DIR}/xnat.env")
else()
  configure_file("${XNAT_SOURCE_DIR}/configs/xnat.env.in" "${staged}/xnat.env" @ONLY)
  file(INSTALL "${staged}/xnat.env" DESTINATION "${XNAT_ETC_DIR}")
endif()
