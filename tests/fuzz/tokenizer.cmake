dsserve_fuzz(fuzz_tokenizer SOURCES ${CMAKE_CURRENT_LIST_DIR}/tokenizer_fuzz.cpp
    LIBS dsserve_tokenizer)
target_compile_definitions(fuzz_tokenizer PRIVATE DSSERVE_DATA_DIR="${DSSERVE_DATA_DIR}")
