from __future__ import annotations

from devkit.main import main

raise SystemExit(main())
