# A standalone timing executable for the conv-layer kernels (bench/bench_conv.cpp), built only on request:
# `ninja intl_bench_conv`. Its main lives in bench/standalone/, outside the library's source glob.
add_executable(intl_bench_conv EXCLUDE_FROM_ALL bench/standalone/conv_main.cpp)
target_link_libraries(intl_bench_conv PRIVATE intl_core)
target_compile_options(intl_bench_conv PRIVATE ${INTL_WARNINGS})
