"""Rate–accuracy evaluation of vlmpress against classical codecs, for machines and for people."""
