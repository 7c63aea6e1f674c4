# Simulation tests of the device agent (label sim): the power-cut sweep and the scenarios
# (faulty images, wrong variant, below the floor, tampered image, dropped downloads, ...),
# on simulated hardware with an in-process device API double.
if(TARGET fwa_posix)
	add_library(fwa_simkit STATIC ${CMAKE_CURRENT_LIST_DIR}/simkit.c)
	target_include_directories(fwa_simkit PUBLIC ${CMAKE_CURRENT_LIST_DIR})
	target_link_libraries(fwa_simkit PUBLIC fwa_posix fwa_core_internal ota_delta)

	add_executable(test_agent_sweep ${CMAKE_CURRENT_LIST_DIR}/test_sweep.c)
	target_link_libraries(test_agent_sweep PRIVATE fwa_simkit)
	add_test(NAME sim_agent_power_cut_sweep COMMAND test_agent_sweep)
	set_tests_properties(sim_agent_power_cut_sweep PROPERTIES LABELS sim TIMEOUT 600)
	add_test(NAME sim_power_cut_sweep_delta COMMAND test_agent_sweep delta)
	set_tests_properties(sim_power_cut_sweep_delta PROPERTIES LABELS sim TIMEOUT 600)
	add_test(NAME sim_power_cut_sweep_delta_fallback COMMAND test_agent_sweep delta-fallback)
	set_tests_properties(sim_power_cut_sweep_delta_fallback PROPERTIES LABELS sim TIMEOUT 900)

	add_executable(test_agent_scenarios ${CMAKE_CURRENT_LIST_DIR}/test_scenarios.c)
	target_link_libraries(test_agent_scenarios PRIVATE fwa_simkit PkgConfig::CMOCKA)
	add_test(NAME sim_agent_scenarios COMMAND test_agent_scenarios)
	set_tests_properties(sim_agent_scenarios PROPERTIES LABELS sim TIMEOUT 300)
endif()
