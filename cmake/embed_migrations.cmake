# Turns migrations/<backend>/NNNN_name.sql into a C++ array of {version, name, sql}, so the binary
# carries its schema and applies it at start.
file(GLOB files ${DIR}/*.sql)
list(SORT files)
set(body "")
foreach(f ${files})
  get_filename_component(name ${f} NAME_WE)
  string(REGEX MATCH "^[0-9]+" version ${name})
  math(EXPR version "${version}")
  file(READ ${f} sql)
  string(APPEND body "    {${version}, \"${name}\", R\"concertd_sql(${sql})concertd_sql\"},\n")
endforeach()
file(WRITE ${OUTPUT}.tmp "// Generated from ${DIR} by cmake/embed_migrations.cmake. Do not edit.\n#include \"${HEADER}\"\n\nnamespace ${NAMESPACE} {\nconst std::vector<Migration> ${SYMBOL} = {\n${body}};\n}\n")
file(COPY_FILE ${OUTPUT}.tmp ${OUTPUT} ONLY_IF_DIFFERENT)
