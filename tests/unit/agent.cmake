# Unit tests of the agent core's modules (label unit): HTTP client, persistent state,
# check-in encoding. They link the core and reach its internal headers.
foreach(t http state checkin)
	add_executable(test_agent_${t} ${CMAKE_CURRENT_LIST_DIR}/test_agent_${t}.c)
	target_link_libraries(test_agent_${t} PRIVATE fwa_core_internal PkgConfig::CMOCKA)
	add_test(NAME unit_agent_${t} COMMAND test_agent_${t})
	set_tests_properties(unit_agent_${t} PROPERTIES LABELS unit)
endforeach()
