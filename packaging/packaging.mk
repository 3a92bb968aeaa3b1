# Packaging (packaging/): the Debian package.  Included by the top Makefile.
#
#   make deb    objs/deb/libnginx-mod-http-reductrai_VERSION_ARCH.deb, built
#               from a copy of the sources in build/deb/ with
#               packaging/debian as its debian/ (dpkg-buildpackage, dh and
#               dh_nginx from nginx-dev)

DEB_BUILD   := $(BUILD)/deb
DEB_SRC     := $(DEB_BUILD)/libnginx-mod-http-reductrai
DEB_FILES   := config ngx_http_reductrai_module cli Makefile LICENSE \
               README.md docs/DEPLOY.md conf

.PHONY: deb

deb:
	tools/deps.sh deb
	rm -rf $(DEB_BUILD) $(OBJS)/deb
	mkdir -p $(DEB_SRC) $(OBJS)/deb
	tar -cf - $(DEB_FILES) | tar -C $(DEB_SRC) -xf -
	cp -a packaging/debian $(DEB_SRC)/debian
	cd $(DEB_SRC) && dpkg-buildpackage -b -us -uc -j2
	cp $(DEB_BUILD)/*.deb $(OBJS)/deb/
	@ls -1 $(OBJS)/deb/*.deb
