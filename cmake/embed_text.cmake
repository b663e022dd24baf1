# Turns a text file into a C++ string constant, so the binary serves it without reading files.
file(READ ${INPUT} text)
file(WRITE ${OUTPUT}.tmp "// Generated from ${INPUT} by cmake/embed_text.cmake. Do not edit.\n#include <string_view>\nnamespace concertd::generated {\nextern const std::string_view ${SYMBOL};\nconst std::string_view ${SYMBOL} = R\"concertd_text(${text})concertd_text\";\n}\n")
file(COPY_FILE ${OUTPUT}.tmp ${OUTPUT} ONLY_IF_DIFFERENT)
