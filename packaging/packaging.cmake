# Installation (cmake --install) and Debian packages (cpack -G DEB), split by audience:
#   otad      the server: otad, its systemd unit, sysusers.d and tmpfiles.d entries,
#             /etc/otad/otad.conf (a conffile), otad(8), otad.conf(5)
#   ota-sign  offline signing, no server dependencies: ota-sign(1)
#   otactl    operators and auditors: otactl(1) with bash completion, ota-audit-verify(1)
#   ota-agent the device agent on Linux: ota-agent(1)
# The binaries' install() rules live beside their targets; this file adds the rest. Man pages
# are plain roff in man/, compressed here (gzip -n: reproducible). docs/operations.md
# ("Packages") says why CPack rather than a debian/ folder.
include(GNUInstallDirs)

set(OTA_PKG_DIR ${CMAKE_CURRENT_LIST_DIR})
set(OTA_GEN ${CMAKE_BINARY_DIR}/packaging)
file(MAKE_DIRECTORY ${OTA_GEN})

# Man pages, each to the package of its program.
set(OTA_MAN_PAGES otad.8:otad otad.conf.5:otad ota-sign.1:ota-sign otactl.1:otactl
	ota-audit-verify.1:otactl ota-agent.1:ota-agent)
set(OTA_MAN_OUT)
foreach(entry ${OTA_MAN_PAGES})
	string(REPLACE ":" ";" parts ${entry})
	list(GET parts 0 page)
	list(GET parts 1 comp)
	string(REGEX REPLACE ".*\\.([0-9])$" "\\1" section ${page})
	add_custom_command(OUTPUT ${OTA_GEN}/${page}.gz
		COMMAND gzip -9nc ${CMAKE_SOURCE_DIR}/man/${page} > ${OTA_GEN}/${page}.gz
		DEPENDS ${CMAKE_SOURCE_DIR}/man/${page} VERBATIM)
	list(APPEND OTA_MAN_OUT ${OTA_GEN}/${page}.gz)
	install(FILES ${OTA_GEN}/${page}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section}
		COMPONENT ${comp})
endforeach()

# Per package: copyright and a Debian changelog.
set(OTA_PACKAGES otad ota-sign otactl ota-agent)
foreach(pkg ${OTA_PACKAGES})
	set(PKG ${pkg})
	set(VERSION ${PROJECT_VERSION})
	configure_file(${OTA_PKG_DIR}/changelog ${OTA_GEN}/${pkg}/changelog.Debian @ONLY)
	add_custom_command(OUTPUT ${OTA_GEN}/${pkg}/changelog.Debian.gz
		COMMAND gzip -9nc ${OTA_GEN}/${pkg}/changelog.Debian > ${OTA_GEN}/${pkg}/changelog.Debian.gz
		DEPENDS ${OTA_GEN}/${pkg}/changelog.Debian VERBATIM)
	list(APPEND OTA_MAN_OUT ${OTA_GEN}/${pkg}/changelog.Debian.gz)
	install(FILES ${OTA_PKG_DIR}/copyright ${OTA_GEN}/${pkg}/changelog.Debian.gz
		DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/${pkg} COMPONENT ${pkg})
endforeach()
add_custom_target(ota_packaging_files ALL DEPENDS ${OTA_MAN_OUT})

# The server's system files. /etc is absolute: a conffile belongs in /etc whatever the prefix.
install(FILES ${CMAKE_SOURCE_DIR}/systemd/otad.service
	DESTINATION lib/systemd/system COMPONENT otad)
install(FILES ${OTA_PKG_DIR}/otad.sysusers DESTINATION lib/sysusers.d RENAME otad.conf
	COMPONENT otad)
install(FILES ${OTA_PKG_DIR}/otad.tmpfiles DESTINATION lib/tmpfiles.d RENAME otad.conf
	COMPONENT otad)
install(FILES ${CMAKE_SOURCE_DIR}/etc/otad.conf DESTINATION /etc/otad COMPONENT otad)
install(FILES ${CMAKE_SOURCE_DIR}/docs/operations.md ${CMAKE_SOURCE_DIR}/docs/security.md
	${CMAKE_SOURCE_DIR}/docs/rollouts.md ${CMAKE_SOURCE_DIR}/docs/openapi.yaml
	DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/otad COMPONENT otad)

# CPack: one .deb per component.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME ota)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "OTA project <ota-maintainers@example.org>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL ${OTA_PACKAGES})
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://example.org/ota")
set(CPACK_DEBIAN_OTAD_PACKAGE_NAME otad)
set(CPACK_DEBIAN_OTA-SIGN_PACKAGE_NAME ota-sign)
set(CPACK_DEBIAN_OTACTL_PACKAGE_NAME otactl)
set(CPACK_DEBIAN_OTA-AGENT_PACKAGE_NAME ota-agent)
set(CPACK_DEBIAN_OTAD_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_OTA-SIGN_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_OTACTL_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_OTA-AGENT_PACKAGE_SECTION utils)
# systemd-sysusers and systemd-tmpfiles run in the postinst.
set(CPACK_DEBIAN_OTAD_PACKAGE_DEPENDS systemd)
# An issuing key in a PKCS#11 token ([trust] issuer_key = pkcs11:...) needs OpenSSL's pkcs11
# engine, and p11-kit's proxy module when [trust] pkcs11_module is not set.
set(CPACK_DEBIAN_OTAD_PACKAGE_SUGGESTS "libengine-pkcs11-openssl, p11-kit-modules")
set(CPACK_DEBIAN_OTAD_PACKAGE_CONTROL_EXTRA
	${OTA_PKG_DIR}/debian/conffiles ${OTA_PKG_DIR}/debian/postinst)
set(CPACK_DEBIAN_OTAD_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_OTAD_DESCRIPTION "secure over-the-air update server
otad serves signed firmware manifests and images to devices over mutual TLS,
runs staged canary rollouts and keeps a tamper-evident audit log. Operators
use its management API with otactl.")
set(CPACK_DEBIAN_OTA-SIGN_DESCRIPTION "offline signer of OTA roots of trust and release manifests
ota-sign generates keys, writes and rotates root-of-trust metadata and signs
release manifests (DSSE, ECDSA P-256) where the signing keys live, offline.
It has no network code and no server dependencies.")
set(CPACK_DEBIAN_OTACTL_DESCRIPTION "command line of the otad management API
otactl manages devices, images, releases and staged rollouts of an otad
server, and queries, exports and verifies its audit log. The package also
has ota-audit-verify, the offline verifier of audit exports.")
set(CPACK_DEBIAN_OTA-AGENT_DESCRIPTION "OTA device agent for Linux with simulated A/B flash
ota-agent checks in with otad over mutual TLS, verifies signed manifests,
downloads updates into the inactive slot, boots them as a trial and confirms
or rolls back, on simulated flash with the rules of the RP2350 bootrom.")
include(CPack)
