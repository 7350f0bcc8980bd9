# CPack: `cpack --config <build>/CPackConfig.cmake` (or `cmake --build <build> --target package`)
# makes a .tar.gz and a .deb of everything the install() rules name.
# Included at the end of the top-level CMakeLists.txt.

set(CPACK_PACKAGE_NAME "moestudio")
set(CPACK_PACKAGE_VENDOR "MoE Studio project")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_DESCRIPTION
    "MoE Studio runs and LoRA fine-tunes Mixture-of-Experts language models on one workstation, \
splitting experts between CPU and GPU (hybrid inference). Desktop app, command-line tool and engine.")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_VERSION_MAJOR "${PROJECT_VERSION_MAJOR}")
set(CPACK_PACKAGE_VERSION_MINOR "${PROJECT_VERSION_MINOR}")
set(CPACK_PACKAGE_VERSION_PATCH "${PROJECT_VERSION_PATCH}")
set(CPACK_PACKAGE_INSTALL_DIRECTORY "moestudio")
set(CPACK_PACKAGE_CONTACT "MoE Studio maintainers <maintainers@moestudio.invalid>")
if(EXISTS "${PROJECT_SOURCE_DIR}/README.md")
    set(CPACK_RESOURCE_FILE_README "${PROJECT_SOURCE_DIR}/README.md")
endif()
if(EXISTS "${PROJECT_SOURCE_DIR}/LICENSE")
    set(CPACK_RESOURCE_FILE_LICENSE "${PROJECT_SOURCE_DIR}/LICENSE")
endif()

set(CPACK_GENERATOR "TGZ;DEB")
# The TGZ is relocatable: bin/, share/moestudio/demo-model, share/applications ... under one
# folder; the app finds its demo model relative to its own binary.
set(CPACK_SOURCE_GENERATOR "TGZ")
set(CPACK_SOURCE_IGNORE_FILES "/\\.git/" "/build[^/]*/" "/\\.cache/")

# Debian package: runtime dependencies are computed by dpkg-shlibdeps from the binaries.
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
set(CPACK_DEBIAN_PACKAGE_SECTION "science")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# What dpkg-shlibdeps cannot see: Qt's platform plugins are loaded at run time (the xcb, wayland
# and offscreen platforms are in qt6-qpa-plugins).
set(CPACK_DEBIAN_PACKAGE_DEPENDS "qt6-qpa-plugins")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "fonts-dejavu-core")
# A build with CUDA links the toolkit's cuBLAS, which no Debian package provides: the package is
# made from a CPU-only build (scripts/package-check.sh), which runs on any x86-64 machine.
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)

include(CPack)
