{
  "targets": [
    {
      "target_name": "ringlet_native",
      "sources": [
        "src/addon.cc",
        "src/dispatch.cc",
        "src/kernels_avx512.cc",
        "src/kernels_avx2.cc",
        "src/kernels_scalar.cc"
      ],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-fopenmp-simd", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=fast"],
      "libraries": ["-lopenblas"]
    }
  ]
}
