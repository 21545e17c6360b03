dsserve_fuzz(fuzz_safetensors SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/safetensors_fuzz.cpp LIBS dsserve_core)
