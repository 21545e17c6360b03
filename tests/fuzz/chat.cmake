dsserve_fuzz(fuzz_jinja SOURCES chat_fuzz.cpp LIBS dsserve_chat)
