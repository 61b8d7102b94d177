# Writes a header holding the JSON Schemas as raw string literals (run with cmake -P).
file(READ "${CONFIG}" _config)
file(READ "${JOB}" _job)
file(WRITE "${OUT}.tmp"
"// Generated from data_schemas/*.schema.json by cmake/EmbedSchemas.cmake; do not edit.\n#pragma once\nnamespace dualrs {\ninline namespace core {\nnamespace embedded {\ninline constexpr const char* kConfigSchema = R\"dualrs_schema(${_config})dualrs_schema\";\ninline constexpr const char* kJobSchema = R\"dualrs_schema(${_job})dualrs_schema\";\n}  // namespace embedded\n}  // namespace core\n}  // namespace dualrs\n")
file(RENAME "${OUT}.tmp" "${OUT}")
