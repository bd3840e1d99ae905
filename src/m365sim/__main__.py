from m365sim.cli import main

raise SystemExit(main())
