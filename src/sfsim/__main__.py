from sfsim.cli import main

raise SystemExit(main())
