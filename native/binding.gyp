{
  "targets": [
    {
      "target_name": "cuvette_native",
      "sources": ["src/addon.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [
        ["OS=='linux'", { "sources": ["src/vsock_linux.cc", "src/relay_linux.cc"], "libraries": ["-lpthread"] }],
        ["OS=='win'", {
          "sources": ["src/hvsock_win.cc", "src/service_win.cc"],
          "libraries": ["-lws2_32", "-ladvapi32"],
          "msvs_settings": { "VCCLCompilerTool": { "AdditionalOptions": ["/std:c++17"] } }
        }]
      ]
    }
  ]
}
