# Stream/non-stream equality of the output parsers over random text (parsers_fuzz.cpp).
dsserve_fuzz(fuzz_parsers SOURCES parsers_fuzz.cpp LIBS dsserve_parsers)
